"""``ensure_admin``: a superuser to log in with, and an API token for the demo inspector.

Prints the admin login URL, the username and the password (generated when not given), then
the ``inspector`` user's DRF token for trying the table endpoints.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse
from rest_framework.authtoken.models import Token

from example_project.tasks.management.demo import INSPECTOR_USERNAME, get_or_create_inspector


class Command(BaseCommand):
    help = "Create the superuser 'admin' if absent and print how to log in, plus the inspector's API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument(
            "--password",
            help="Password to set (also on an existing user). Without it a new user gets a generated one.",
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the site is served.")

    def handle(
        self, *args: Any, username: str, email: str, password: str | None, base_url: str, **options: Any
    ) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            shown = password or secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email=email, password=shown)
            self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
        elif password:
            user.set_password(password)
            user.save(update_fields=["password"])
            shown = password
            self.stdout.write(f"Superuser {username!r} exists; password updated.")
        else:
            shown = "(unchanged; pass --password to set a new one)"
            self.stdout.write(f"Superuser {username!r} exists.")

        self.stdout.write(f"Login URL: {base_url.rstrip('/')}{reverse('admin:index')}")
        self.stdout.write(f"Username:  {username}")
        self.stdout.write(f"Password:  {shown}")

        token, _ = Token.objects.get_or_create(user=get_or_create_inspector())
        self.stdout.write(f"API token for {INSPECTOR_USERNAME!r}: {token.key}")
        self.stdout.write(f"  send it as the header  Authorization: Token {token.key}")
