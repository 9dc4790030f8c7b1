"""The example site's settings, plus a log of every server error on stderr.

With ``DEBUG`` off Django sends 500 tracebacks to ``mail_admins`` only; the fuzz run keeps
the server's stderr in a file and prints the tracebacks next to the failing request.
"""

from example_project.settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
        "django.server": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
