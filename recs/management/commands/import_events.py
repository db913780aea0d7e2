"""manage.py import_events: historic events from CSV or JSON Lines into the log, then a rebuild."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recs.events.importing.readers import FIELD_ALIASES, FORMATS, ImportFileError, parse_mapping
from recs.events.importing.rows import FIELDS
from recs.events.importing.run import DEFAULT_CHUNK_ROWS, ChunkDone, ImportResult, import_events
from recs.features.rebuild import rebuild_online_store
from recs.models import Event


class Command(BaseCommand):
    help = (
        "Import historic events from a CSV or JSON Lines file (optionally .gz) into the event "
        "log: validated like the live API (no maximum age), deduped by event_id, resumable "
        "after an interruption; then rebuild the online feature store. Fields: "
        f"{', '.join(FIELDS)}; also understood: "
        f"{', '.join(f'{a} ({f})' for a, f in FIELD_ALIASES.items())}."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format", choices=FORMATS, default=None, dest="file_format",
            help="default: from the file name (.csv, .jsonl, .ndjson), else from its content",
        )  # fmt: skip
        parser.add_argument(
            "--map", action="append", default=[], metavar="COLUMN=FIELD", dest="mapping",
            help="read a column (a JSON key) as a field, e.g. --map sku=product_id; repeatable",
        )  # fmt: skip
        parser.add_argument(
            "--chunk-size", type=int, default=DEFAULT_CHUNK_ROWS,
            help="rows per committed chunk (memory is bounded by it; the checkpoint follows it)",
        )  # fmt: skip
        parser.add_argument(
            "--allow-unknown-products", action="store_true",
            help="keep events of SKUs not in the catalog (default: reject them)",
        )  # fmt: skip
        parser.add_argument(
            "--no-rebuild", action="store_true",
            help="do not rebuild the online feature store afterwards",
        )  # fmt: skip
        parser.add_argument(
            "--force", action="store_true",
            help="import from the first row again, even if the file was imported completely",
        )  # fmt: skip

    def handle(self, *args, file: Path, file_format, mapping, chunk_size, allow_unknown_products,
               no_rebuild, force, **options):  # fmt: skip
        bar: tqdm | None = None
        stored = 0
        rows_done = 0

        def started(estimate: int | None, done: int) -> None:
            nonlocal bar
            if done:
                self.stdout.write(f"Resuming after row {done:,} (the last committed chunk).")
            bar = tqdm(total=estimate, initial=done, desc="Importing", unit=" rows",
                       unit_scale=True, disable=None)  # fmt: skip

        def chunk_done(chunk: ChunkDone) -> None:
            nonlocal stored, rows_done
            stored += chunk.stored
            rows_done = chunk.rows_done
            if bar is not None:
                bar.set_postfix(stored=f"{stored:,}", refresh=False)
                bar.update(chunk.rows)

        try:
            result = import_events(
                file, file_format=file_format, mapping=parse_mapping(mapping), chunk_size=chunk_size,
                allow_unknown_products=allow_unknown_products, force=force,
                on_start=started, on_chunk=chunk_done,
            )  # fmt: skip
        except ImportFileError as error:
            raise CommandError(f"Cannot import {file}: {error}") from None
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted. The first {rows_done:,} rows are committed; run the same command "
                "again to continue from there.",
                returncode=130,
            ) from None
        finally:
            if bar is not None:
                bar.close()
        if result.already_complete:
            self.stdout.write(
                f"{file.name} (sha256 {result.file_sha256[:12]}) was imported completely before: "
                f"{result.total_rows:,} rows, {result.total_stored:,} stored. Nothing to do "
                "(use --force to import it again)."
            )
            return
        self.print_summary(result)
        if no_rebuild:
            self.stdout.write("Online feature store not rebuilt (--no-rebuild); run "
                              "`manage.py rebuild_online_features` when ready.")  # fmt: skip
        elif not result.changed_log:
            self.stdout.write("Nothing new in the log; the online feature store is left as is.")
        else:
            self.rebuild()

    def rebuild(self) -> None:
        began = time.perf_counter()
        try:
            with tqdm(total=Event.objects.count(), desc="Rebuilding online features",
                      unit=" events", unit_scale=True, disable=None) as bar:  # fmt: skip
                replayed = rebuild_online_store(progress=bar.update)
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted during the rebuild. The import is complete; run "
                "`manage.py rebuild_online_features` to rebuild the online store.",
                returncode=130,
            ) from None
        seconds = time.perf_counter() - began
        self.stdout.write(self.style.SUCCESS(
            f"Rebuilt the online feature store: {replayed:,} events in {seconds:.1f} s."
        ))  # fmt: skip

    def print_summary(self, result: ImportResult) -> None:
        rate = result.rows_read / result.seconds if result.seconds else 0.0
        rows = [
            ("file", f"{result.file_name} ({result.file_format}, sha256 {result.file_sha256[:12]})"),
            ("rows read", f"{result.rows_read:,}"),
            ("stored (new)", f"{result.stored:,}"),
            ("duplicates (event_id already in the log)", f"{result.duplicates:,}"),
            ("left out (shoppers erased since)", f"{result.erased:,}"),
            ("rejected", f"{result.rejected:,}"),
            ("sessions linked to users", f"{result.sessions_linked:,}"),
            ("import time", f"{result.seconds:.1f} s ({rate:,.0f} rows/s)"),
        ]  # fmt: skip
        if result.resumed_from_row:
            rows.insert(1, ("resumed after row", f"{result.resumed_from_row:,}"))
            rows.append(("whole file (all runs): rows / stored / skipped",
                         f"{result.total_rows:,} / {result.total_stored:,} / "
                         f"{result.total_skipped:,}"))  # fmt: skip
        if result.unknown_products_kept:
            rows.append(("kept with unknown products", f"{result.unknown_products_kept:,}"))
        if result.ignored_columns:
            rows.append(("ignored columns", ", ".join(result.ignored_columns)))
        width = max(len(label) for label, _ in rows)
        self.stdout.write(self.style.SUCCESS("Import complete."))
        for label, value in rows:
            self.stdout.write(f"  {label:<{width}}  {value}")
        if result.rejected:
            by_field = ", ".join(
                f"{name} {n:,}" for name, n in result.rejected_by_field.most_common()
            )
            self.stdout.write(f"  rejected by field: {by_field}")
            shown = len(result.rejections)
            self.stdout.write(f"  first {shown} rejected rows:" if shown < result.rejected
                              else "  rejected rows:")  # fmt: skip
            for rejection in result.rejections:
                event = f" (event_id {rejection.event_id})" if rejection.event_id else ""
                self.stdout.write(f"    line {rejection.line}{event}: {rejection.reason}")
