"""Signals sent by the table endpoints.

``sync_committed`` fires after the transaction of an insert, update, delete or undelete
commits (never for a rolled-back write): the place for push notifications or webhooks.
Arguments: ``sender`` (the model), ``instance``, ``operation`` and ``request``.
"""

from django.dispatch import Signal

sync_committed = Signal()
