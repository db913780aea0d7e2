"""manage.py rebuild_online_features: replay the event log into a fresh online feature store."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from recs.features.online import layout_is_current
from recs.features.rebuild import rebuild_online_store
from recs.models import Event


class Command(BaseCommand):
    help = "Clear the online feature store in Redis and rebuild it from the event log."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=5000)
        parser.add_argument(
            "--if-outdated", action="store_true",
            help="only when the store is empty or in an older key layout (used by demo.sh)",
        )  # fmt: skip

    def handle(self, *args, chunk_size, if_outdated, **options):
        if if_outdated and (layout_is_current() or not Event.objects.exists()):
            self.stdout.write("The online feature store is current; nothing to rebuild.")
            return
        with tqdm(total=Event.objects.count(), unit="event", disable=None) as bar:
            replayed = rebuild_online_store(chunk_size, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Replayed {replayed} events into the online store."))
