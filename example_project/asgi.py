"""ASGI entry point for the example site: ``uvicorn example_project.asgi:application``.

Serves every URL; under ASGI a change-event subscriber (``/tables/$events``) is a suspended
coroutine, not a worker thread (docs/events.rst).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
application = get_asgi_application()
