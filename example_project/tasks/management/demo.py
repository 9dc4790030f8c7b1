"""Shared pieces of the example project's demo commands: the demo inspector user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

INSPECTOR_USERNAME = "inspector"


def get_or_create_inspector() -> Any:
    """The demo field user who owns the demo inspections (no password; it uses a token)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=INSPECTOR_USERNAME, defaults={"first_name": "Field", "last_name": "Inspector"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
