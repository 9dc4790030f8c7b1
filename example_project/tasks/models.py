"""The example tables: the TodoItem sample's Task and Note, and a per-user Inspection log."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from django_offline_sync.models import SyncModel


class Task(SyncModel):
    text = models.CharField(_("text"), max_length=500, blank=True, default="")
    complete = models.BooleanField(_("complete"), default=False)
    priority = models.IntegerField(_("priority"), default=0)
    due_date = models.DateTimeField(_("due date"), null=True, blank=True)

    class Meta(SyncModel.Meta):
        verbose_name = _("task")
        verbose_name_plural = _("tasks")

    def __str__(self) -> str:
        return self.text or self.id


class Note(SyncModel):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="notes", verbose_name=_("task"))
    body = models.TextField(_("body"), blank=True, default="")

    class Meta(SyncModel.Meta):
        verbose_name = _("note")
        verbose_name_plural = _("notes")

    def __str__(self) -> str:
        return self.body[:50] or self.id


class Inspection(SyncModel):
    """A field inspection of one pipe, visible only to the inspector who logged it."""

    class Condition(models.TextChoices):
        GOOD = "good", _("good")
        WORN = "worn", _("worn")
        CRACKED = "cracked", _("cracked")
        BLOCKED = "blocked", _("blocked")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inspections", editable=False, null=True
    )
    site = models.CharField(_("site"), max_length=200)
    pipe_id = models.CharField(_("pipe id"), max_length=100)
    condition = models.CharField(_("condition"), max_length=20, choices=Condition.choices, default=Condition.GOOD)
    remarks = models.TextField(_("remarks"), blank=True, default="")
    inspected_at = models.DateTimeField(_("inspected at"), null=True, blank=True)

    class Meta(SyncModel.Meta):
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")

    def __str__(self) -> str:
        return f"{self.site} / {self.pipe_id}"
