"""manage.py train: fit, evaluate, version and precompute, as beat and the admin action do."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recs.learners import LEARNERS
from recs.training.pipeline import NoTrainingData, train_models
from recs.training.precompute import candidate_cache_is_filled, precompute_candidates


class Command(BaseCommand):
    help = "Train every learner on the event log, register ModelVersions, precompute candidates."

    def add_arguments(self, parser):
        parser.add_argument("--only", nargs="*", choices=sorted(LEARNERS), help="learner keys")
        parser.add_argument("--holdout-days", type=float, default=None)
        parser.add_argument("--if-untrained", action="store_true",
                            help="do nothing when serving versions exist (used by demo.sh)")  # fmt: skip

    def handle(self, *args, only, holdout_days, if_untrained, **options):
        from recs.models import ModelVersion

        if if_untrained and ModelVersion.objects.filter(status="serving").exists():
            if candidate_cache_is_filled():
                self.stdout.write(
                    "Serving model versions exist; not training (drop --if-untrained to retrain)."
                )
            else:
                lists = precompute_candidates()
                self.stdout.write(f"Serving versions exist; refilled {lists:,} candidate lists.")
            return
        keys = only or list(LEARNERS)
        steps = 2 + 2 * len(keys)
        with tqdm(total=steps, desc="Training", disable=None) as bar:

            def progress(message: str) -> None:
                bar.set_postfix_str(message)
                bar.update(1)

            try:
                run = train_models(keys, holdout_days=holdout_days, progress=progress)
            except NoTrainingData as error:
                raise CommandError(
                    f"{error} Send events (POST /api/v1/events, or the tag's page script) or "
                    "import history (manage.py import_events); until then pages show the newest "
                    "products in stock."
                ) from error
        self.stdout.write(f"Run {run.run_id}: {run.interactions:,} interactions, {run.seconds:.1f} s, "
                          f"peak memory {run.peak_memory_mib:,.0f} MiB, {run.candidate_lists:,} candidate lists.")  # fmt: skip
        for version in run.versions:
            metrics = version.metrics
            self.stdout.write(
                f"  {version.key:>16} #{version.pk:<5} recall@20 {metrics.get('recall@20', 0):.4f}  "
                f"ndcg@10 {metrics.get('ndcg@10', 0):.4f}  fit {version.fit_seconds:5.1f}s  {version.status}"
            )
