"""What sign-in keeps in the database: provider identities and signed-out tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["ProviderIdentity", "RevokedToken"]


class ProviderIdentity(models.Model):
    """An OpenID Connect identity (issuer + subject) linked to a Django user.

    Keyed by issuer and ``sub``, never by e-mail: an e-mail address can change hands and a
    provider may not verify it, so matching on it would let one account take over another.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_identities", verbose_name=_("user")
    )
    provider = models.CharField(_("provider"), max_length=50)
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_login = models.DateTimeField(_("last sign-in"), null=True, blank=True)

    class Meta:
        verbose_name = _("provider identity")
        verbose_name_plural = _("provider identities")
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="offline_sync_auth_identity_unique")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.subject}"


class RevokedToken(models.Model):
    """A token signed out before its expiry (by its ``jti``); rows past ``expires_at`` are dropped."""

    jti = models.CharField(_("token id"), max_length=64, primary_key=True)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)

    class Meta:
        verbose_name = _("revoked token")
        verbose_name_plural = _("revoked tokens")

    def __str__(self) -> str:
        return self.jti
