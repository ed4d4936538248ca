"""The dashboard's import pages: a form that uploads a file of bids into a source, and the
import's page, which shows its progress (reloading itself while it runs) and its first errors.
The same service as POST /api/v1/sources/{id}/import/ (crawls.services.imports)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods

from crawls import selectors
from crawls.models import ImportJob, Source
from crawls.services import imports
from crawls.views import place_of, render_page

REFRESH_SECONDS = 2


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSON Lines (.jsonl) or an OCDS package (.json).")
    format = forms.ChoiceField(
        choices=[("", "By file name"), *ImportJob.Format.choices], required=False
    )
    encoding = forms.CharField(
        required=False, max_length=40, help_text="Empty: UTF-8 (with or without BOM), else CP949."
    )


@login_required
@require_http_methods(["GET", "POST"])
def source_import(request: HttpRequest, source_id: int) -> HttpResponse:
    place = place_of(request)
    try:
        source = selectors.source_get_for_user(user=request.user, source_id=source_id)
    except Source.DoesNotExist as exc:
        raise Http404("No such source of yours.") from exc
    place.require_writer(source.workspace_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = imports.import_create(
                source=source, user=request.user, raw=upload, filename=upload.name or "",
                size=upload.size or 0, fmt=form.cleaned_data["format"],
                encoding=form.cleaned_data["encoding"],
            )  # fmt: skip
        except imports.ImportRejected as rejected:
            name = rejected.field if rejected.field in form.fields else "file"
            form.add_error(name, str(rejected))
        else:
            if not job.path:  # small: imported now
                imports.import_run(job_id=job.pk, raw=upload)
            return redirect("crawls:import", job_id=job.pk)
    status = 400 if form.is_bound else 200
    context = {"form": form, "source": source}
    return render_page(request, "crawls/import_form.html", place, context, status=status)


@login_required
@require_GET
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    place = place_of(request)
    job = (
        ImportJob.objects.visible_to(request.user)
        .select_related("source")
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        raise Http404("No such import of yours.")
    running = job.status not in ImportJob.FINISHED
    share = round(100 * job.rows_done / job.rows_total) if job.rows_total else 0
    context = {"job": job, "running": running, "share": share, "refresh": REFRESH_SECONDS}
    response = render_page(request, "crawls/import_detail.html", place, context)
    if running:
        response["Refresh"] = str(REFRESH_SECONDS)  # reloads itself until the import ends
    return response
