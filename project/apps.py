from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """Installed only for its management commands (run, ensure_admin); it has no models."""

    name = "project"
    verbose_name = "Forest"
