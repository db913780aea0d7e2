"""manage.py bench_training: time and memory of fitting every learner on a big log, in one process."""

import os
import shlex
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bench.harness import load_note
from recs.evaluation.report import add_report_arguments, machine_description, write_section
from recs.evaluation.scale.precompute import PRECOMPUTE_LIMIT_S, PRECOMPUTE_SAMPLE
from recs.evaluation.scale.report import budget_lines, scale_section
from recs.evaluation.scale.run import run_scale
from recs.learners import LEARNERS


class Command(BaseCommand):
    help = (
        "Training at scale: load an events CSV, fit every learner with its defaults on all of "
        "it (one process, one after another), precompute the candidate lists without writing "
        "them, and report time and memory per step in a section of docs/QUALITY.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=Path, required=True,
                            help="CSV with user_id,item_id,event_type,timestamp (see evaluate)")  # fmt: skip
        parser.add_argument("--catalog", type=Path, help="catalog CSV (item_id, ...)")
        parser.add_argument(
            "--only", nargs="+", choices=sorted(LEARNERS),
            help="these learners only (the hybrid brings its components)",
        )  # fmt: skip
        parser.add_argument(
            "--active-days", type=float,
            help="precompute for shoppers/items active in these last days "
            "(default: ACTIVE_USER_DAYS)",
        )  # fmt: skip
        parser.add_argument(
            "--precompute-sample", type=int, default=PRECOMPUTE_SAMPLE,
            help="users and items to precompute for when the full precompute would take too long",
        )  # fmt: skip
        parser.add_argument(
            "--precompute-limit-min", type=float, default=PRECOMPUTE_LIMIT_S / 60,
            help="a precompute estimated longer than this runs on the sample and is extrapolated",
        )  # fmt: skip
        add_report_arguments(parser)

    def handle(self, *args, events, catalog, only, active_days, precompute_sample,
               precompute_limit_min, name, output, **options):  # fmt: skip
        if precompute_sample < 1 or precompute_limit_min < 0:
            raise CommandError("--precompute-sample must be >= 1, --precompute-limit-min >= 0.")
        verbose = options["verbosity"] > 0
        say = (lambda message: self.stderr.write(f"  {message}")) if verbose else None
        busy_at_start = os.getloadavg()[0]
        try:
            run = run_scale(
                events, catalog, keys=only, active_days=active_days,
                precompute_sample=precompute_sample,
                precompute_limit_s=precompute_limit_min * 60, progress=verbose, say=say,
            )  # fmt: skip
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        for f in run.fits:
            outcome = (
                f"FAILED after {f.seconds:.1f} s: {f.failed}"
                if f.failed
                else f"{f.seconds:8.1f} s  artifact {f.artifact_mib or 0:8.1f} MiB"
            )
            self.stdout.write(
                f"{f.key:>16}  {outcome}  peak {f.peak_mib:8,.0f} MiB (+{f.raised_peak_mib:,.0f})"
                f"  RSS {f.rss_mib:8,.0f} MiB"
            )
        self.stdout.write(
            f"{'all fits':>16}  {run.fit_seconds:8.1f} s  peak {run.fit_phase_peak_mib:,.0f} MiB"
        )
        if run.precompute:
            p = run.precompute
            self.stdout.write(
                f"{'precompute':>16}  {p.seconds:8.1f} s  {p.total_lists:,} lists, full run "
                f"{p.full_seconds / 60:.1f} min ({'extrapolated' if p.sampled else 'measured'})"
            )
        for line in budget_lines(run):
            self.stdout.write(line)
        command = "python manage.py bench_training" + (
            " " + shlex.join(sys.argv[2:])
            if len(sys.argv) > 2 and sys.argv[1] == "bench_training"
            else ""
        )
        title = f"Training at scale: {name or events.stem}"
        section = scale_section(
            run, title=title, source=f"`{events.name}`", command=command,
            machine=machine_description(), busy_note=load_note(busy_at_start, os.getloadavg()[0]),
        )  # fmt: skip
        write_section(output, title, section)
        self.stdout.write(f"Report section '{title}' written to {output}.")
