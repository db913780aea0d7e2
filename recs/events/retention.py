"""Event retention: events older than EVENT_RETENTION_DAYS move from the log to daily archive files.

The archive holds one file per UTC day of occurred_at, `events-YYYY-MM-DD.jsonl.gz`, one JSON
object per line: EventRecord.to_message() plus the row's received_at and ingest_batch_id. Each
chunk of rows is appended as a gzip member of its own (gzip readers, zcat included, read
concatenated members as one stream) and fsynced before exactly those rows are deleted, in short
transactions of their own: a row leaves the database only once it is on disk, and writers of new
events never wait long. A run stopped between a write and its delete only leaves rows that the
next run appends again; read_archive drops such duplicate lines by event_id. A run killed in the
middle of a write leaves a torn last member: read_archive stops before it, and the next run cuts
it off before appending.

Only rows of the event log go. The online features and popularity in Redis and the trained models
keep what they derived from the archived events; what reads the log afterwards (training, a rebuild
of the online store, offline features) sees the retained window only.
"""

import gzip
import json
import logging
import os
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from redis.exceptions import LockError

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.batches import batched
from recs.events.log import LOG_FIELDS
from recs.events.records import RECORD_FIELDS, EventRecord
from recs.models import Event

logger = logging.getLogger(__name__)

# Rows read, written as one gzip member and then deleted, at a time; and rows per DELETE (and
# per transaction), kept small so a concurrent writer of new events waits milliseconds at most.
ARCHIVE_CHUNK_ROWS = 5000
DELETE_BATCH_ROWS = 1000
# The run's lock expires this long after its last chunk, so a run that died frees it soon.
LOCK_TTL_S = 600
READ_BLOCK_BYTES = 1 << 20
# The columns of an archive line: the record's, then the row's bookkeeping.
ARCHIVE_NAME = re.compile(r"^events-(\d{4}-\d{2}-\d{2})\.jsonl\.gz$")
GZIP_FRAMING = 31  # zlib's wbits for a gzip header and trailer around the deflate data
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time


@dataclass
class RetentionResult:
    """What one run did: lines written, rows deleted, days and files touched."""

    cutoff: datetime | None  # events that happened before it went; None: retention is off
    archived: int = 0
    deleted: int = 0
    days: int = 0
    files: list[Path] = field(default_factory=list)
    skipped: str = ""  # why the run did nothing at all


@dataclass(frozen=True)
class ArchiveRunSummary:
    """The last finished run, as kept in Redis for the health page."""

    finished_at: datetime
    cutoff: datetime
    archived: int
    deleted: int
    days: int
    files: int
    seconds: float


# --- Reads: the window, the expired days, the archive files ------------------------------------


def retention_cutoff(now: datetime | None = None) -> datetime | None:
    """Events that happened before this instant are due for the archive; None keeps them all."""
    days = float(aisle_settings.EVENT_RETENTION_DAYS)
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def expired_days(cutoff: datetime) -> list[tuple[date, int]]:
    """The UTC days that hold events older than the cutoff, oldest first, with their counts."""
    rows = (
        Event.objects.filter(occurred_at__lt=cutoff)
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("day")
        .annotate(events=Count("id"))
        .order_by("day")
    )
    return [(row["day"], row["events"]) for row in rows]


def archive_dir() -> Path:
    return Path(aisle_settings.EVENT_ARCHIVE_DIR)


def archive_path(day: date) -> Path:
    return archive_dir() / f"events-{day.isoformat()}.jsonl.gz"


def archived_days() -> list[tuple[date, Path]]:
    """The archive's files, oldest day first."""
    directory = archive_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if match := ARCHIVE_NAME.match(path.name):
            found.append((date.fromisoformat(match[1]), path))
    return sorted(found)


def read_archive(path: Path | str) -> Iterator[EventRecord]:
    """The events of one archive file, each once (a re-run may have appended a copy)."""
    seen: set[str] = set()
    for lines, _end in _gzip_members(Path(path)):
        for line in lines.splitlines():
            if not line.strip():
                continue
            message = json.loads(line)
            if message["event_id"] in seen:
                continue
            seen.add(message["event_id"])
            # Fields added to records later are absent from older files: they keep their default.
            fields = {name: message[name] for name in RECORD_FIELDS if name in message}
            yield EventRecord.from_message(fields)


def _gzip_members(path: Path) -> Iterator[tuple[bytes, int]]:
    """Each whole gzip member of the file, unpacked, with the offset where it ends. Stops at a
    torn member: a write cut short, which only the last one can be."""
    end = 0
    decoder, parts, fed = zlib.decompressobj(GZIP_FRAMING), [], 0
    with open(path, "rb") as handle:
        pending = b""
        while pending or (pending := handle.read(READ_BLOCK_BYTES)):
            try:
                parts.append(decoder.decompress(pending))
            except zlib.error:
                break
            if not decoder.eof:
                fed, pending = fed + len(pending), b""
                continue
            end += fed + len(pending) - len(decoder.unused_data)
            yield b"".join(parts), end
            pending = decoder.unused_data
            decoder, parts, fed = zlib.decompressobj(GZIP_FRAMING), [], 0
    if end < path.stat().st_size:
        logger.warning("%s: torn gzip member after byte %d (a write cut short)", path, end)


def last_archive_run() -> ArchiveRunSummary | None:
    """The last finished run, or None when none was recorded (Redis errors propagate)."""
    raw = redis_clients.worker_client().hgetall(redis_keys.EVENT_ARCHIVE_LAST_RUN)
    if not raw:
        return None
    values = {key.decode(): value.decode() for key, value in raw.items()}
    return ArchiveRunSummary(
        finished_at=datetime.fromisoformat(values["finished_at"]),
        cutoff=datetime.fromisoformat(values["cutoff"]),
        archived=int(values["archived"]),
        deleted=int(values["deleted"]),
        days=int(values["days"]),
        files=int(values["files"]),
        seconds=float(values["seconds"]),
    )


# --- The run: archive, then delete -------------------------------------------------------------


def archive_expired_events(now: datetime | None = None) -> RetentionResult:
    """Archive the events older than the retention window to daily files and delete them from the
    log, oldest day first. One run at a time (a Redis lock); safe to re-run after any stop."""
    cutoff = retention_cutoff(now)
    if cutoff is None:
        return RetentionResult(cutoff=None, skipped="EVENT_RETENTION_DAYS is 0: events are kept")
    client = redis_clients.worker_client()
    lock = client.lock(redis_keys.EVENT_ARCHIVE_LOCK, timeout=LOCK_TTL_S, blocking=False)
    if not lock.acquire():
        return RetentionResult(cutoff=cutoff, skipped="another archive run holds the lock")
    started = time.perf_counter()
    result = RetentionResult(cutoff=cutoff)
    try:
        archive_dir().mkdir(parents=True, exist_ok=True)
        for day, _count in expired_days(cutoff):
            _archive_day(day, cutoff, result, keep_lock=lock.reacquire)
        _record_run(result, time.perf_counter() - started)
    finally:
        try:
            lock.release()
        except LockError:  # it expired after the last chunk: the work is done all the same
            logger.warning("The event archive lock expired before the run released it")
    return result


def _archive_day(
    day: date, cutoff: datetime, result: RetentionResult, keep_lock: Callable[[], Any]
) -> None:
    """The day's expired rows, a chunk at a time: appended to its file, on disk, then deleted."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = Event.objects.filter(
        occurred_at__gte=start, occurred_at__lt=min(start + timedelta(days=1), cutoff)
    ).order_by("id")
    path = archive_path(day)
    if path.exists():
        _cut_torn_tail(path)
    last_id, archived = 0, 0
    while chunk := list(
        rows.filter(id__gt=last_id).values_list("id", *LOG_FIELDS)[:ARCHIVE_CHUNK_ROWS]
    ):
        _append_member(path, [_archive_line(values[1:]) for values in chunk])
        ids = [values[0] for values in chunk]
        archived += len(ids)
        result.deleted += _delete_rows(ids)
        last_id = ids[-1]
        keep_lock()  # raises LockNotOwnedError when it expired: another run may have begun
    if archived:
        result.archived += archived
        result.days += 1
        result.files.append(path)
        logger.info("Archived %d events of %s to %s", archived, day, path)


def _archive_line(values: Sequence[Any]) -> bytes:
    row = dict(zip(LOG_FIELDS, values, strict=True))
    message = EventRecord(**{name: row[name] for name in RECORD_FIELDS}).to_message()
    message["received_at"] = row["received_at"].isoformat()
    message["ingest_batch_id"] = row["ingest_batch_id"]
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _append_member(path: Path, lines: list[bytes]) -> None:
    """The lines as one gzip member at the end of the file, flushed to disk (fsync) before the
    caller deletes their rows. The member is compressed first and appended in one write; a
    failed write is cut off again."""
    member = _gzip_member(lines)
    with open(path, "ab") as raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            raw.write(member)
            raw.flush()
            os.fsync(raw.fileno())
        except BaseException:
            raw.truncate(size)
            raise
    if size == 0:  # a new file: its name must be on disk too before any row goes
        _fsync_directory(path.parent)


def _gzip_member(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(lines), compresslevel=GZIP_LEVEL, mtime=0)


def _cut_torn_tail(path: Path) -> None:
    """Drop a torn last member (a run killed mid-write) so that appended members stay readable."""
    intact = max((end for _lines, end in _gzip_members(path)), default=0)
    if intact < path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(intact)
            os.fsync(handle.fileno())


def _delete_rows(ids: list[int]) -> int:
    """Delete exactly these rows, each batch in a short transaction of its own."""
    deleted = 0
    for batch in batched(ids, DELETE_BATCH_ROWS):
        with transaction.atomic():
            deleted += Event.objects.filter(id__in=batch).delete()[0]
    return deleted


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- Erasure: the right to erasure reaches the archive too ---------------------------------------


def erase_from_archive(user_id: str, session_ids: Iterable[str]) -> int:
    """Remove a shopper's events from every archive file: their own, and those of their sessions
    (the ones given, and the ones their archived events name, which the log no longer shows).
    Each file is rewritten whole and swapped in atomically; returns the lines removed. Waits for
    a running archive run, which could otherwise append rows it read before the erasure."""
    lock = redis_clients.worker_client().lock(
        redis_keys.EVENT_ARCHIVE_LOCK, timeout=LOCK_TTL_S, blocking_timeout=LOCK_TTL_S
    )
    with lock:
        paths = [path for _day, path in archived_days()]
        sessions = set(session_ids) | _archived_sessions(user_id, paths)
        sessions.discard("")

        def names_shopper(message: dict[str, Any]) -> bool:
            return message["user_id"] == user_id or message["session_id"] in sessions

        needles = [value.encode() for value in (user_id, *sessions)]
        return sum(_rewrite_without(path, names_shopper, needles) for path in paths)


def _archived_sessions(user_id: str, paths: Sequence[Path]) -> set[str]:
    """The sessions named on the user's archived events."""
    sessions = set()
    for path in paths:
        for lines, _end in _gzip_members(path):
            if user_id.encode() not in lines:
                continue
            for line in lines.splitlines():
                message = json.loads(line) if line.strip() else {}
                if message.get("user_id") == user_id:
                    sessions.add(message["session_id"])
    return sessions


def _rewrite_without(
    path: Path, drop: Callable[[dict[str, Any]], bool], needles: Sequence[bytes]
) -> int:
    removed = 0
    rewritten = path.with_name(path.name + ".rewrite")
    with open(rewritten, "wb") as raw:
        for lines, _end in _gzip_members(path):
            every = kept = lines.splitlines(keepends=True)
            if any(needle in lines for needle in needles):  # else no line can name the shopper
                kept = [line for line in every if not (line.strip() and drop(json.loads(line)))]
                removed += len(every) - len(kept)
            raw.write(_gzip_member(kept))
        raw.flush()
        os.fsync(raw.fileno())
    if removed:
        os.replace(rewritten, path)
        _fsync_directory(path.parent)
    else:
        rewritten.unlink()
    return removed


def _record_run(result: RetentionResult, seconds: float) -> None:
    """Keep a summary for the health page in Redis, where every web process can read it (the
    archive directory may be on the worker's disk only)."""
    summary = {
        "finished_at": timezone.now().isoformat(),
        "cutoff": result.cutoff.isoformat() if result.cutoff else "",
        "archived": result.archived,
        "deleted": result.deleted,
        "days": result.days,
        "files": len(result.files),
        "seconds": f"{seconds:.3f}",
    }
    try:
        redis_clients.worker_client().hset(redis_keys.EVENT_ARCHIVE_LAST_RUN, mapping=summary)
    except redis_clients.CONNECTION_ERRORS:
        logger.warning("Could not record the event archive run's summary", exc_info=True)
