"""Collect static files only when one changed: whitenoise compresses every file with brotli, which
makes a full collectstatic take tens of seconds (`make run` restarts, the test session)."""

from __future__ import annotations

import json
import os

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

MANIFEST = "staticfiles.json"


def static_is_stale() -> bool:
    """True when the manifest is missing, older than a static source file, or lacks one."""
    manifest = settings.STATIC_ROOT / MANIFEST
    if not manifest.exists():
        return True
    try:
        listed = json.loads(manifest.read_text())["paths"]
    except (OSError, ValueError, KeyError):
        return True
    collected_at = manifest.stat().st_mtime
    for finder in finders.get_finders():
        for path, storage in finder.list([]):
            prefix = getattr(storage, "prefix", None) or ""
            name = f"{prefix}/{path}" if prefix else path
            if name.replace(os.sep, "/") not in listed:
                return True
            if os.path.getmtime(storage.path(path)) > collected_at:
                return True
    return False


def static_collect_if_stale() -> bool:
    """Run collectstatic when static_is_stale(); True when it ran."""
    if not static_is_stale():
        return False
    call_command("collectstatic", interactive=False, verbosity=0)
    return True
