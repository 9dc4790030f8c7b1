import os

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Applies the experiments named in BENCH_EXPERIMENTS (comma-separated: wire_sql, keyset)."""

    name = "experiments"
    label = "bench_experiments"

    def ready(self) -> None:
        from . import wire_sql

        wanted = os.environ.get("BENCH_EXPERIMENTS", "wire_sql,keyset").split(",")
        if "wire_sql" in wanted:
            wire_sql.apply()
        if "keyset" in wanted:
            wire_sql.apply_keyset()


WireSqlConfig = ExperimentsConfig
