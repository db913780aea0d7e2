"""manage.py evaluate: every learner and two reference baselines on a temporal split."""

import shlex
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from recs.bench.harness import machine_description
from recs.evaluation.data import load_interactions_csv, load_online_retail
from recs.evaluation.implicit_baseline import ImplicitALSBaseline
from recs.evaluation.offline import METRICS, evaluate_learners, peak_memory_mib
from recs.evaluation.report import quality_report
from recs.evaluation.split import temporal_split
from recs.learners import LEARNERS

ALS_GRID = ({"alpha": 1.0}, {"alpha": 10.0})


class Command(BaseCommand):
    help = "Offline evaluation of every learner beside global popularity and implicit ALS."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=Path, help="CSV: user_id,item_id,event_type,timestamp")
        parser.add_argument("--holdout-days", type=float, default=30.0)
        parser.add_argument(
            "--output", type=Path, default=Path(settings.BASE_DIR) / "docs" / "QUALITY.md"
        )
        parser.add_argument("--no-als", action="store_true", help="skip the implicit ALS baseline")

    def handle(self, *args, events, holdout_days, output, no_als, **options):
        started = time.perf_counter()
        try:
            interactions, catalog = (
                load_interactions_csv(events) if events else load_online_retail()
            )
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        source = f"`{events}`" if events else "the shipped UCI Online Retail purchases"
        train, test, _ = temporal_split(interactions, holdout_days)
        learners = {key: cls() for key, cls in LEARNERS.items()}
        als_note = "skipped (--no-als)."
        if not no_als:
            grid = {f"implicit_als[{i}]": ImplicitALSBaseline(**p) for i, p in enumerate(ALS_GRID)}
            learners.update(grid)
        # implicit asks for a single-threaded BLAS; the learners' matrix work is fine with it too.
        with (
            threadpool_limits(1, "blas"),
            tqdm(total=len(learners), desc="Models", disable=None) as bar,
        ):
            results = evaluate_learners(learners, train, test, catalog,
                                        progress=lambda name: bar.update(1) or bar.set_postfix_str(name))  # fmt: skip
        if not no_als:
            als = [r for r in results if r.name.startswith("implicit_als[")]
            best_als = max(als, key=lambda r: r.overall["recall@20"])
            chosen = ALS_GRID[int(best_als.name[13:-1])]
            als_note = (
                f"factors 64, regularization 0.05, 15 iterations, confidence 1 + alpha*log1p(weight); "
                f"alpha tried in {[p['alpha'] for p in ALS_GRID]}, best alpha {chosen['alpha']:g} is reported."
            )
            results = [r for r in results if not r.name.startswith("implicit_als[")]
            best_als.name = "implicit_als"
            results.append(best_als)
        for r in sorted(results, key=lambda r: -r.overall["recall@20"]):
            self.stdout.write(f"{r.name:>16}  " + "  ".join(f"{m} {r.overall[m]:.4f}" for m in METRICS)
                              + f"  coverage@10 {r.coverage_at_10:.3f}  fit {r.fit_seconds:.1f}s")  # fmt: skip
        command = (
            "python manage.py evaluate " + shlex.join(sys.argv[2:])
            if len(sys.argv) > 2
            else "python manage.py evaluate"
        )
        report = quality_report(
            results, source=source, command=command.strip(), holdout_days=holdout_days,
            train_size=len(train), test_size=len(test), machine=machine_description(),
            peak_mib=peak_memory_mib(), als_note=als_note,
        )  # fmt: skip
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report)
        self.stdout.write(f"Report written to {output} in {time.perf_counter() - started:.0f} s.")
