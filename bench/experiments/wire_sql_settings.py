"""bench_settings plus the experiments in wire_sql.py (BENCH_EXPERIMENTS selects; default both)."""

from bench_settings import *  # noqa: F401,F403
from bench_settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "experiments.apps.ExperimentsConfig"]
