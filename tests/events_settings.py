"""The example site as the change-event tests serve it (uvicorn subprocesses, a database of their own).

``EVENTS_POLL_MS`` comes from the environment: the PostgreSQL tests set it far above their
timeouts, so an event that arrives in time can only have come through LISTEN/NOTIFY.
"""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import OFFLINE_SYNC

OFFLINE_SYNC = {
    **OFFLINE_SYNC,
    "EVENTS_POLL_MS": int(os.environ.get("EVENTS_POLL_MS", "200")),
    "EVENTS_COALESCE_MS": 50,
    "EVENTS_KEEPALIVE_SECONDS": 2,
    "EVENTS_MAX_STREAMS_PER_CALLER": int(os.environ.get("EVENTS_MAX_STREAMS_PER_CALLER", "16")),
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
