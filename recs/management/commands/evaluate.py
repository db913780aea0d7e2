"""manage.py evaluate: every learner, the baselines and the served pipeline, tuned on validation."""

import shlex
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from threadpoolctl import threadpool_limits

from aisle.conf import aisle_settings
from recs.evaluation.data import load_interactions_csv, load_online_retail
from recs.evaluation.report import (
    add_report_arguments,
    machine_description,
    quality_section,
    write_section,
)
from recs.evaluation.run import run_evaluation
from recs.learners import LEARNERS


class Command(BaseCommand):
    help = (
        "Offline evaluation: every learner, tuned popularity and implicit ALS baselines and the "
        "served pipeline (the render path replayed), tuned on a validation split, scored once "
        "on the test period. Writes a section of docs/QUALITY.md."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--events", type=Path,
            help="CSV with user_id,item_id,event_type,timestamp (optional: order_id, session_id, "
            "category, price, country, quantity); default: the shipped UCI Online Retail data",
        )  # fmt: skip
        parser.add_argument(
            "--catalog", type=Path,
            help="CSV with item_id and launched_at (optional: title, category, price, "
            "description, brand): the products that existed at each cut",
        )  # fmt: skip
        parser.add_argument(
            "--holdout-days", type=float,
            help="length of the test period (and of the validation period before it); "
            "default: 10%% of the log's time span",
        )  # fmt: skip
        parser.add_argument("--budget", type=int, default=6,
                            help="configurations tried per learner on the validation split")  # fmt: skip
        parser.add_argument("--seeds", type=int, default=3,
                            help="seeds per stochastic learner on the test period")  # fmt: skip
        parser.add_argument("--max-shoppers", type=int, default=5000,
                            help="shoppers scored per period (a seeded sample beyond this)")  # fmt: skip
        parser.add_argument(
            "--only", nargs="+", choices=sorted(LEARNERS), help="these learners only"
        )
        add_report_arguments(parser)

    def handle(self, *args, events, catalog, holdout_days, budget, seeds, max_shoppers, only,
               name, output, **options):  # fmt: skip
        if budget < 1 or seeds < 1 or max_shoppers < 1:
            raise CommandError("--budget, --seeds and --max-shoppers must be at least 1.")
        try:
            if events:
                interactions, items = load_interactions_csv(events, catalog_path=catalog)
            else:
                interactions, items = load_online_retail()
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        if not len(interactions):
            raise CommandError("The file has no events.")
        source = f"`{events.name}`" if events else "the shipped UCI Online Retail purchases"
        catalog_source = (
            f"`{catalog.name}` (launch dates given)" if catalog
            else "the log's items, each launched at its first event" if events
            else "the data set's products, each launched at its first sale"
        )  # fmt: skip
        title = name or (events.stem if events else "UCI Online Retail")
        say = (lambda message: self.stderr.write(f"  {message}")) if options["verbosity"] else None
        # implicit asks for a single-threaded BLAS; the other learners are fine with it too.
        with threadpool_limits(1, "blas"):
            try:
                run = run_evaluation(
                    interactions, items, keys=only, holdout_days=holdout_days, budget=budget,
                    seeds=seeds, max_shoppers=max_shoppers, event_weights=aisle_settings.EVENT_WEIGHTS,
                    progress=say,
                )  # fmt: skip
            except ValueError as error:
                raise CommandError(str(error)) from error
        for result in ([run.served] if run.served else []) + run.results:
            if result.failed:
                self.stdout.write(f"{result.name:>16}  FAILED: {result.failed}")
                continue
            self.stdout.write(
                f"{result.name:>16}  recall@20 {result.overall['recall@20']:.4f}"
                f"  ndcg@10 {result.overall['ndcg@10']:.4f}  coverage@10 {result.coverage_at_10:.3f}"
            )
        command = "python manage.py evaluate" + (
            " " + shlex.join(sys.argv[2:])
            if len(sys.argv) > 2 and sys.argv[1] == "evaluate"
            else ""
        )
        section = quality_section(
            interactions, run, title=title, source=source, catalog_source=catalog_source,
            command=command, machine=machine_description(),
        )  # fmt: skip
        write_section(output, title, section)
        self.stdout.write(f"Report section '{title}' written to {output} in {run.seconds:.0f} s.")
