from django.apps import AppConfig


class WireSqlConfig(AppConfig):
    name = "experiments"
    label = "bench_experiments"

    def ready(self) -> None:
        from .wire_sql import apply

        apply()
