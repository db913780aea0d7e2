"""Django app config of the benchmarks: the harness and the bench_* commands, apart from the
product apps (merch, recs), which never import it."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmarks"
