"""Dashboard forms: a source's settings and rules, and the bid filters (the API's BidFilter)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from crawls import bounds
from crawls.filter_fields import MultipleValuesWidget
from crawls.filters import BidFilter
from crawls.models import Source
from crawls.source_examples import RULES_EXAMPLES

# ?ordering= of the bids page, as the API names them.
BID_ORDERINGS = [
    ("-post_date", "Newest post first"),
    ("-views", "Most viewed"),
    ("-amount", "Largest amount"),
    ("deadline", "Deadline, soonest first"),
    ("-deadline", "Deadline, latest first"),
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


# secret__<name>: a new value for a stored secret (blank: keep it); secret_remove__<name>
SECRET_PREFIX = "secret__"  # noqa: S105 - a field name prefix, not a secret
SECRET_REMOVE_PREFIX = "secret_remove__"  # noqa: S105 - a field name prefix
NEW_SECRETS = 2  # rows for new secrets: new_secret_name_<n>, new_secret_value_<n>


class SecretInput(forms.PasswordInput):
    """A write-only input: never rendered with a value (PasswordInput's default)."""

    def __init__(self, *, is_set: bool = False):
        attrs = {"autocomplete": "new-password"}
        if is_set:
            attrs["placeholder"] = "set"
        super().__init__(attrs=attrs, render_value=False)


class SourceForm(forms.Form):
    """What the dashboard edits of a source; the rest (retries, limits) keeps its defaults.

    Secrets are write-only: a password input per stored name (shown as "set"; blank keeps the
    value), a box to remove it, and rows for new ones."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(
        choices=Source.Kind.choices,
        initial=Source.Kind.HTML,
        required=False,
        help_text="What the source serves: the rules below are of this kind.",
    )
    start_urls = LinesField(help_text="One URL a line.")
    allowed_hosts = LinesField(required=False, help_text="Empty: the hosts of the start URLs.")
    include_patterns = LinesField(required=False, help_text="Regular expressions, one a line.")
    exclude_patterns = LinesField(required=False, help_text="Regular expressions, one a line.")
    max_depth = forms.IntegerField(min_value=0, initial=10)
    max_pages = forms.IntegerField(min_value=1, initial=10_000)
    concurrency_per_host = forms.IntegerField(min_value=1, max_value=64, initial=8)
    delay_seconds = forms.FloatField(min_value=0, initial=0.0)
    obey_robots = forms.BooleanField(required=False, initial=True)
    track_removals = forms.BooleanField(
        required=False,
        initial=True,
        label="Mark bids no longer listed as removed",
        help_text="Off for a source that lists only recent notices each time.",
    )
    schedule_cron = forms.CharField(
        max_length=100, required=False, help_text="Five-field cron expression; empty: no schedule."
    )
    schedule_timezone = forms.CharField(max_length=64, initial="UTC")
    overlap_policy = forms.ChoiceField(
        choices=Source.OverlapPolicy.choices, initial=Source.OverlapPolicy.SKIP
    )
    rules = RulesField(help_text="Extraction rules as JSON (see docs/crawling.md).")
    quality_thresholds = BoundedJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"}),
        help_text='Overrides of the quality checks, e.g. {"coverage_drop_points": 30}; '
        "null turns a check off (docs/quality.md).",
    )
    preview_url = forms.URLField(
        required=False,
        max_length=2048,
        assume_scheme="https",
        label="Preview URL",
        help_text="What the rules extract from this page (default: the first start URL).",
    )

    def __init__(
        self, *args: Any, secret_names: list[str] | tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and not self.initial.get("rules"):
            self.initial["rules"] = RULES_EXAMPLES[self.initial.get("kind") or Source.Kind.HTML]
        self.secret_names = sorted(secret_names)
        for name in self.secret_names:
            self.fields[SECRET_PREFIX + name] = forms.CharField(
                label=f"Secret {name}", required=False, strip=False,
                widget=SecretInput(is_set=True), help_text="Set; type a new value to change it.",
            )  # fmt: skip
            self.fields[SECRET_REMOVE_PREFIX + name] = forms.BooleanField(
                label=f"Remove secret {name}", required=False
            )
        for number in range(1, NEW_SECRETS + 1):
            self.fields[f"new_secret_name_{number}"] = forms.RegexField(
                regex=r"^[a-z_][a-z0-9_]*$", max_length=64, required=False,
                label=f"New secret {number}: name",
                help_text="Lower case letters, digits and _: rules use it as {secret.NAME}.",
                error_messages={"invalid": "lower case letters, digits and _ (not first a digit)"},
            )  # fmt: skip
            self.fields[f"new_secret_value_{number}"] = forms.CharField(
                label=f"New secret {number}: value",
                required=False,
                strip=False,
                widget=SecretInput(),
            )

    def clean_quality_thresholds(self) -> object:
        return self.cleaned_data.get("quality_thresholds") or {}

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or Source.Kind.HTML

    def secret_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        """(value field, remove field) of each stored secret, then (name, value) of new rows."""
        stored = [
            (self[SECRET_PREFIX + n], self[SECRET_REMOVE_PREFIX + n]) for n in self.secret_names
        ]
        new = [
            (self[f"new_secret_name_{n}"], self[f"new_secret_value_{n}"])
            for n in range(1, NEW_SECRETS + 1)
        ]
        return stored + new

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for number in range(1, NEW_SECRETS + 1):
            name = cleaned.get(f"new_secret_name_{number}")
            value = cleaned.get(f"new_secret_value_{number}")
            if value and not name:
                self.add_error(f"new_secret_name_{number}", "name the secret")
            elif name and not value:
                self.add_error(f"new_secret_value_{number}", "give its value")
        return cleaned

    def secrets(self) -> dict[str, str | None]:
        """The secrets to write (services.secrets_merge): None keeps a stored value."""
        data = self.cleaned_data
        secrets: dict[str, str | None] = {
            name: data.get(SECRET_PREFIX + name) or None
            for name in self.secret_names
            if not data.get(SECRET_REMOVE_PREFIX + name)
        }
        for number in range(1, NEW_SECRETS + 1):
            if data.get(f"new_secret_name_{number}") and data.get(f"new_secret_value_{number}"):
                secrets[data[f"new_secret_name_{number}"]] = data[f"new_secret_value_{number}"]
        return secrets

    @classmethod
    def initial_for(cls, source: Source) -> dict:
        return {name: getattr(source, name) for name in cls.base_fields if hasattr(source, name)}

    def values(self) -> dict:
        """The cleaned values the source services take."""
        values = {k: v for k, v in self.cleaned_data.items() if k in self.base_fields}
        del values["preview_url"]
        values["secrets"] = self.secrets()
        return values

    def add_service_errors(self, error: ValidationError) -> None:
        """A service's ValidationError on the fields it names (the rest above the form)."""
        for field, messages in error.message_dict.items():
            if field == "secrets":  # the form's secrets are several fields: the first new name
                field = "new_secret_name_1"
            self.add_error(field if field in self.fields else None, messages)


class SourceSelect(forms.Select):
    """A <select> for the `source` filter, which takes a list of ids."""

    def value_from_datadict(self, data, files, name):
        return MultipleValuesWidget().value_from_datadict(data, files, name)


class ExtraLinesWidget(forms.Textarea):
    """The `extra` filter's key:value pairs, one a line (the API repeats the parameter)."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str] | None:
        raw = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        if raw is None:
            return None
        values = raw if isinstance(raw, list) else [raw]
        lines = (line.strip() for value in values for line in str(value).splitlines())
        return [line for line in lines if line]

    def format_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return super().format_value(value)


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
    "q": ("Find words", "In title, department, reference and extra fields; parts of words too."),
    "extra": ("Extra fields", "key:value, one a line (all must hold)."),
    "deadline_after": ("Deadline from", ""),
    "deadline_before": ("Deadline until", ""),
    "closing_within_days": ("Closing within days", "Deadline between now and this many days."),
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
    form.fields["q"].widget = forms.TextInput(attrs={"type": "search"})
    form.fields["extra"].widget = ExtraLinesWidget(attrs={"rows": 2})
    for name in ("deadline_after", "deadline_before"):
        form.fields[name].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
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
    presence: Any = form.fields["presence"]  # django-filter's ChoiceField
    presence.label, presence.empty_label = "Live or removed", "Both"
    presence.choices = [("live", "Live"), ("removed", "Removed")]
    presence.help_text = "Removed: no longer on the source's board."
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
