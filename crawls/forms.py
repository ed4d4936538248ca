"""Dashboard forms: a source's settings and rules, and the bid filters (the API's BidFilter)."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from crawls import bounds
from crawls.filters import BidFilter, MultipleValuesWidget
from crawls.models import Source

# ?ordering= of the bids page, as the API names them.
BID_ORDERINGS = [
    ("-post_date", "Newest post first"),
    ("-views", "Most viewed"),
    ("-amount", "Largest amount"),
]


class LinesField(forms.CharField):
    """A list of strings, one a line."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value


class RulesField(forms.CharField):
    """The extraction rules as JSON text; the service validates what they say."""

    widget = forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"})

    def to_python(self, value):
        text = super().to_python(value)
        try:
            return bounds.loads(text)
        except bounds.TooDeep as exc:
            raise ValidationError(str(exc)) from exc
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from exc

    def prepare_value(self, value):
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def bound_data(self, data, initial):
        return data  # show what was typed, even when it is not JSON


class BoundedJSONField(forms.JSONField):
    """Django's JSON form field (the admin's), with the depth checked before json parses."""

    def to_python(self, value):
        if isinstance(value, str | bytes):
            try:
                bounds.text_check_depth(value)
            except bounds.TooDeep as exc:
                raise ValidationError(str(exc), code="invalid") from exc
        return super().to_python(value)

    def bound_data(self, data, initial):
        """What was typed, shown again: as text when it nests too deep to parse."""
        if isinstance(data, str):
            try:
                bounds.text_check_depth(data)
            except bounds.TooDeep:
                return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)


class SourceForm(forms.Form):
    """What the dashboard edits of a source; the rest (retries, limits) keeps its defaults."""

    name = forms.CharField(max_length=200)
    start_urls = LinesField(help_text="One URL a line.")
    allowed_hosts = LinesField(required=False, help_text="Empty: the hosts of the start URLs.")
    include_patterns = LinesField(required=False, help_text="Regular expressions, one a line.")
    exclude_patterns = LinesField(required=False, help_text="Regular expressions, one a line.")
    max_depth = forms.IntegerField(min_value=0, initial=10)
    max_pages = forms.IntegerField(min_value=1, initial=10_000)
    concurrency_per_host = forms.IntegerField(min_value=1, max_value=64, initial=8)
    delay_seconds = forms.FloatField(min_value=0, initial=0.0)
    obey_robots = forms.BooleanField(required=False, initial=True)
    schedule_cron = forms.CharField(
        max_length=100, required=False, help_text="Five-field cron expression; empty: no schedule."
    )
    schedule_timezone = forms.CharField(max_length=64, initial="UTC")
    overlap_policy = forms.ChoiceField(
        choices=Source.OverlapPolicy.choices, initial=Source.OverlapPolicy.SKIP
    )
    rules = RulesField(help_text="Extraction rules as JSON (see docs/crawling.md).")
    preview_url = forms.URLField(
        required=False,
        max_length=2048,
        assume_scheme="https",
        label="Preview URL",
        help_text="What the rules extract from this page (default: the first start URL).",
    )

    @classmethod
    def initial_for(cls, source: Source) -> dict:
        return {name: getattr(source, name) for name in cls.base_fields if hasattr(source, name)}

    def values(self) -> dict:
        """The cleaned values the source services take."""
        return {k: v for k, v in self.cleaned_data.items() if k != "preview_url"}

    def add_service_errors(self, error: ValidationError) -> None:
        """A service's ValidationError on the fields it names (the rest above the form)."""
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class SourceSelect(forms.Select):
    """A <select> for the `source` filter, which takes a list of ids."""

    def value_from_datadict(self, data, files, name):
        return MultipleValuesWidget().value_from_datadict(data, files, name)


# The bids page's filter form: the API's BidFilter with short labels. The first ones are shown,
# the others sit behind "More filters" (a <details>).
BID_FILTER_LABELS = {
    "search": ("Search titles", "Part of a title, any case."),
    "source": ("Source", ""),
    "department": ("Department", "Exactly; separate several with commas."),
    "post_date_after": ("Posted from", ""),
    "post_date_before": ("Posted until", ""),
    "amount_min": ("Amount at least", ""),
    "amount_max": ("Amount at most", ""),
    "views_min": ("Views at least", ""),
    "views_max": ("Views at most", ""),
    "changed_since": ("New or changed since", ""),
    "crawl": ("Crawl id", "The bids that crawl recorded."),
    "state": ("Found by that crawl as", "Needs a crawl id."),
    "status": ("Status", "One or several (Ctrl/⌘-click)."),
    "currency": ("Currency", "ISO 4217 code, e.g. KRW."),
    "procurement_method": ("Procurement method", "Exactly, any case: open, selective, …"),
    "classification": ("Classification", "A code (CPV:45000000) or a prefix (CPV:45*)."),
}
BID_FILTERS_SHOWN = (
    "search", "source", "department", "post_date_after", "post_date_before", "amount_min",
)  # fmt: skip


def bid_filter(data, *, queryset, sources, zone_name: str = "") -> BidFilter:
    """BidFilter of the page's query string in one workspace, with widgets for a form.

    Only the form's labels and widgets change: the filters (and the API's) stay as they are."""
    filterset = BidFilter(data, queryset=queryset)
    del filterset.filters["workspace"]  # the page shows the current workspace only
    form = filterset.form
    form.fields["source"].widget = SourceSelect(
        choices=[("", "Any source"), *((s.pk, s.name) for s in sources)]
    )
    for name in ("post_date_after", "post_date_before"):
        form.fields[name].widget = forms.DateInput(attrs={"type": "date"})
    form.fields["changed_since"].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
    form.fields["search"].widget = forms.TextInput(attrs={"type": "search"})
    for name in ("amount_min", "amount_max"):
        form.fields[name].widget.attrs.update(step="any", min="0")
    statuses = BidFilter.base_filters["status"].extra["choices"]
    form.fields["status"].widget = forms.SelectMultiple(
        choices=statuses, attrs={"size": len(statuses)}
    )
    form.fields["currency"].widget.attrs.update(
        placeholder="KRW", size="4", autocapitalize="characters"
    )
    form.fields["classification"].widget.attrs.update(placeholder="CPV:45*")
    form.fields["state"].empty_label = "New or changed"
    form.fields["state"].choices = [("new", "New"), ("changed", "Changed")]
    for name, (label, help_text) in BID_FILTER_LABELS.items():
        form.fields[name].label = label
        form.fields[name].help_text = help_text
    if zone_name:
        form.fields["changed_since"].help_text = f"In {zone_name}."
    return filterset


def bid_filter_groups(form) -> tuple[list, list, bool]:
    """The bound fields shown, those behind "More filters", and whether that opens (one of
    them has a value or an error)."""
    shown = [form[name] for name in BID_FILTERS_SHOWN]
    more = [form[name] for name in form.fields if name not in BID_FILTERS_SHOWN]
    opened = any(field.errors or field.value() not in (None, "", []) for field in more)
    return shown, more, opened


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. “nightly export script”."
    )
