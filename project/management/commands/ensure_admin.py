"""Create the first admin user when there is none (used by `make run`)."""

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from crawls import services


class Command(BaseCommand):
    help = (
        "Create a superuser and a first workspace when no superuser exists. Credentials come from "
        "DJANGO_SUPERUSER_USERNAME / _EMAIL / _PASSWORD; without a password one is generated "
        "and printed once."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin user exists; nothing to do.")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL") or ""
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user = user_model.objects.create_superuser(
            username=username, email=email, password=password
        )
        services.workspace_create(owner=user, name="Demo")
        self.stdout.write(
            self.style.SUCCESS(f"Created admin user '{username}' and workspace 'Demo'.")
        )
        if generated:
            self.stdout.write(
                self.style.WARNING(f"  password: {password}   (shown once; change it in the admin)")
            )
