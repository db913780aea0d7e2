"""A resumable import of one history file: rows validated and stored a chunk at a time.

Rows go straight to the log in chunks (no Celery: this is an offline bulk path). After each
committed chunk an ImportCheckpoint records how many rows of the file are done, in the same
transaction as the chunk's events, so an import stopped by Ctrl-C or a crash resumes after the
last committed chunk. Shoppers erased since their events happened are left out. The online
feature store is not updated here: the caller rebuilds it from the log once at the end
(recs.features.rebuild.rebuild_online_store).
"""

import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from aisle.conf import aisle_settings
from recs.batches import batched
from recs.erasure import without_erased_shoppers
from recs.events.importing.log import KnownProducts, link_sessions
from recs.events.importing.readers import (
    FORMATS,
    ImportFileError,
    RawRow,
    check_mapping,
    detect_format,
    fingerprint,
    open_text,
    rows_of,
)
from recs.events.importing.rows import InvalidRow, validate_row
from recs.events.log import insert_events
from recs.events.records import EventRecord
from recs.models import ImportCheckpoint

CHECKPOINT_KIND = "events"
DEFAULT_CHUNK_ROWS = 20_000
MAX_REPORTED_REJECTIONS = 20


@dataclass(frozen=True)
class Rejection:
    line: int
    event_id: str
    reason: str


@dataclass(frozen=True)
class ChunkDone:
    """Reported after each committed chunk (progress bars, and tests that interrupt an import)."""

    number: int
    rows: int
    stored: int
    duplicates: int
    rejected: int
    rows_done: int


@dataclass
class ImportResult:
    """What one run of an import did; `total_*` are over every run of the file (resumes)."""

    file_name: str
    file_sha256: str
    file_format: str
    already_complete: bool = False
    resumed_from_row: int = 0
    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_field: Counter = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    sessions_linked: int = 0
    erased: int = 0
    unknown_products_kept: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0
    total_stored: int = 0
    total_skipped: int = 0
    seconds: float = 0.0

    @property
    def changed_log(self) -> bool:
        """Whether the online store needs a rebuild: this run, or an interrupted earlier run of
        the same file (which never got to its rebuild), wrote events or session links."""
        if self.already_complete:
            return False
        return bool(self.stored or self.sessions_linked or self.resumed_from_row)

    def reject(self, line: int, event_id: str, errors: Sequence[tuple[str, str]]) -> None:
        self.rejected += 1
        for name, _ in errors:
            self.rejected_by_field[name or "whole row"] += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            reason = "; ".join(
                f"{name}: {message}" if name else message for name, message in errors
            )
            self.rejections.append(Rejection(line, event_id, reason))


def _skip(rows: Iterator[RawRow], count: int) -> None:
    for _ in range(count):
        if next(rows, None) is None:
            return


def _checkpoint(sha: str, name: str, force: bool, result: ImportResult) -> ImportCheckpoint | None:
    """The file's checkpoint, reset by force; None when the file was imported completely."""
    checkpoint, _ = ImportCheckpoint.objects.get_or_create(
        kind=CHECKPOINT_KIND, file_sha256=sha, defaults={"file_name": name[:500]}
    )
    if checkpoint.completed_at and not force:
        result.already_complete = True
        result.total_rows = checkpoint.rows_done
        result.total_stored = checkpoint.stored
        result.total_skipped = checkpoint.skipped
        return None
    if force:
        checkpoint.rows_done = checkpoint.stored = checkpoint.skipped = 0
        checkpoint.completed_at = None
    checkpoint.file_name = name[:500]
    checkpoint.save()
    return checkpoint


def import_events(
    path: Path,
    *,
    file_format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_ROWS,
    allow_unknown_products: bool = False,
    force: bool = False,
    on_start: Callable[[int | None, int], None] | None = None,
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> ImportResult:
    """Import an events file into the log; resumes an interrupted import of the same file (by
    content hash) and does nothing for one imported completely, unless forced.

    on_start(estimated rows or None, rows already done) is called once reading begins;
    on_chunk after each committed chunk. Raises ImportFileError when the file cannot be read.
    """
    began = time.perf_counter()
    mapping = dict(mapping or {})
    check_mapping(mapping)
    if chunk_size < 1:
        raise ImportFileError("the chunk size must be at least 1")
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}")
    if file_format is not None and file_format not in FORMATS:
        raise ImportFileError(f"unknown format {file_format!r}; use one of {', '.join(FORMATS)}")
    try:
        file_format = file_format or detect_format(path)
        sha, lines = fingerprint(path)
    except (OSError, EOFError, zlib.error) as error:
        raise ImportFileError(f"cannot read {path}: {error}") from error
    result = ImportResult(file_name=path.name, file_sha256=sha, file_format=file_format)
    estimate = lines if file_format == "jsonl" or lines is None else max(lines - 1, 0)
    try:
        with open_text(path) as handle:
            # The header is checked before any checkpoint exists: a file that cannot be read
            # leaves nothing behind.
            source = rows_of(handle, file_format, mapping)
            checkpoint = _checkpoint(sha, str(path), force, result)
            if checkpoint is None:
                result.seconds = time.perf_counter() - began
                return result
            result.resumed_from_row = checkpoint.rows_done
            rows = iter(source)
            _skip(rows, checkpoint.rows_done)
            if on_start:
                on_start(estimate, checkpoint.rows_done)
            run = uuid.uuid4().hex[:8]
            products = KnownProducts()
            for number, chunk in enumerate(batched(rows, chunk_size), start=1):
                done = _import_chunk(
                    chunk, checkpoint, result, products,
                    batch_id=f"import:{sha[:12]}:{run}:{number}",
                    allow_unknown_products=allow_unknown_products,
                    number=number,
                )  # fmt: skip
                if on_chunk:
                    on_chunk(done)
    except (OSError, EOFError, zlib.error) as error:
        # A file that stops being readable part way: what is committed stays, a re-run resumes.
        raise ImportFileError(f"cannot read {path}: {error}") from error
    result.ignored_columns = sorted(source.ignored)
    checkpoint.completed_at = timezone.now()
    checkpoint.save(update_fields=["completed_at", "updated_at"])
    result.total_rows = checkpoint.rows_done
    result.total_stored = checkpoint.stored
    result.total_skipped = checkpoint.skipped
    result.seconds = time.perf_counter() - began
    return result


def _import_chunk(
    chunk: list[RawRow],
    checkpoint: ImportCheckpoint,
    result: ImportResult,
    products: KnownProducts,
    *,
    batch_id: str,
    allow_unknown_products: bool,
    number: int,
) -> ChunkDone:
    """Validate one chunk and commit its events, links and checkpoint together."""
    latest = timezone.now() + timedelta(seconds=aisle_settings.EVENT_MAX_FUTURE_SKEW_S)
    rejects: list[tuple[int, str, list[tuple[str, str]]]] = []
    valid: list[tuple[int, EventRecord]] = []
    for line, values, problem in chunk:
        if values is None:
            rejects.append((line, "", [("", problem)]))
            continue
        try:
            valid.append((line, validate_row(values, latest=latest)))
        except InvalidRow as error:
            rejects.append((line, str(values.get("event_id") or "").strip()[:64], error.args[0]))
    unknown = products.unknown_of({r.product_sku for _, r in valid if r.product_sku})
    if unknown and not allow_unknown_products:
        kept = []
        for line, record in valid:
            if record.product_sku in unknown:
                reason = f"unknown product {record.product_sku!r}"
                rejects.append((line, record.event_id, [("product_id", reason)]))
            else:
                kept.append((line, record))
        valid = kept
    elif unknown:
        result.unknown_products_kept += sum(r.product_sku in unknown for _, r in valid)
    for line, event_id, errors in sorted(rejects, key=lambda reject: reject[0]):
        result.reject(line, event_id, errors)
    # Of rows repeating an event_id the first wins, as in the log.
    unique: dict[str, EventRecord] = {}
    for _, record in valid:
        unique.setdefault(record.event_id, record)
    # Events of a shopper who was erased since they happened must not come back with an old
    # export (recs.erasure): they are left out and counted apart.
    records = without_erased_shoppers(list(unique.values()))
    if len(records) < len(unique):
        result.erased += len(unique) - len(records)
        kept = {record.event_id for record in records}
        valid = [(line, record) for line, record in valid if record.event_id in kept]
    with transaction.atomic():
        stored = insert_events(records, batch_id=batch_id)
        linked = link_sessions(records)
        checkpoint.rows_done += len(chunk)
        checkpoint.stored += stored
        checkpoint.skipped += len(chunk) - stored
        checkpoint.save(update_fields=["rows_done", "stored", "skipped", "updated_at"])
    duplicates = len(valid) - stored
    result.rows_read += len(chunk)
    result.stored += stored
    result.duplicates += duplicates
    result.sessions_linked += linked
    return ChunkDone(
        number=number, rows=len(chunk), stored=stored, duplicates=duplicates,
        rejected=len(rejects), rows_done=checkpoint.rows_done,
    )  # fmt: skip
