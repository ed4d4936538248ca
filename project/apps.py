from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ProjectConfig(AppConfig):
    """Installed only for its management commands (run, ensure_admin); it has no models."""

    name = "project"
    verbose_name = "Forest"

    def ready(self) -> None:
        from project import checks, dbscope  # noqa: F401, PLC0415 - connects the scope, the check

        post_migrate.connect(dbscope.grant_app_role, dispatch_uid="forest-grant-app-role")
