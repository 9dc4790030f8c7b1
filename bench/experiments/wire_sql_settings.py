"""bench_settings plus the wire_sql experiment (see wire_sql.py)."""

from bench_settings import *  # noqa: F401,F403
from bench_settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "experiments.apps.WireSqlConfig"]
