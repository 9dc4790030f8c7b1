"""Provider identities in the admin: link an existing user to a provider's subject, or unlink one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from .models import ProviderIdentity

if TYPE_CHECKING:
    # ``ModelAdmin`` is generic only in the stubs; at runtime it cannot be subscripted.
    _Base = admin.ModelAdmin[ProviderIdentity]
else:
    _Base = admin.ModelAdmin


@admin.register(ProviderIdentity)
class ProviderIdentityAdmin(_Base):
    list_display = ["user", "provider", "subject", "issuer", "created_at", "last_login"]
    list_filter = ["provider"]
    search_fields = ["subject", "issuer", "user__username", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_login"]
