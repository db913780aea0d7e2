"""Right to erasure: remove one shopper from the engine's database and Redis, keep aggregates.

What goes: the shopper's events and those of their sessions (linked at login, or named on
their own events and served lists), the session links, the served-list log (rows and entries
not yet drained from the Redis stream), their online features and applied-once markers, their
candidate lists and re-score debounce marker. What stays: aggregates that no longer name
anyone (VariantHourlyStats, product and segment features), and one ErasureRecord that holds a
keyed digest of the id, never the id. Experiment assignment is a hash of the shopper's id, so
there is nothing stored to erase: the served-list log is the assignment's only trace.

A session shared with another login (the same browser, two accounts) is erased whole: its
events cannot be told apart, and keeping them would keep the erased shopper's history.
"""

import getpass
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Max, Q
from redis.cluster import RedisCluster

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.batches import batched
from recs.events.records import EventRecord
from recs.events.retention import erase_from_archive
from recs.events.selectors import event_records
from recs.features.definitions import stored_features
from recs.features.events import FeatureEvent
from recs.models import ErasedSession, ErasureRecord, Event, ServedList, SessionLink

DIGEST_LABEL = b"aisle.erasure-digest"
MAX_ID_LENGTH = 64  # Event.user_id and session_id
SHOPPER_ENTITIES = ("user", "session")
# Served-list stream entries read per XRANGE, keys per pipeline, ids per SQL IN list.
STREAM_CHUNK = 1000
KEY_CHUNK = 1000
SQL_CHUNK = 500
SCAN_COUNT = 1000
COUNT_KINDS = (
    "sessions", "events", "session_links", "served_lists", "served_log_entries",
    "online_features", "event_markers", "candidate_lists", "pending_rescores", "archived_events",
)  # fmt: skip


def _digest_key() -> bytes:
    if aisle_settings.ERASURE_DIGEST_KEY:
        return aisle_settings.ERASURE_DIGEST_KEY.encode()
    return hmac.new(settings.SECRET_KEY.encode(), DIGEST_LABEL, hashlib.sha256).digest()


def subject_digest(user_id: str) -> str:
    """A keyed digest of a shopper id (HMAC-SHA256, hex): answers "was this id erased?" without
    keeping the id, and cannot be reversed by hashing guessed ids without the key. Set
    ERASURE_DIGEST_KEY in production: the fallback derives from SECRET_KEY, so rotating that
    would make earlier records unrecognisable."""
    return hmac.new(_digest_key(), user_id.encode(), hashlib.sha256).hexdigest()


def erased_at_by_user(user_ids: Iterable[str]) -> dict[str, datetime]:
    """When each of these users was last erased (never-erased users are absent)."""
    return _erased_at(user_ids, held_erasures(), sessions=False)


def erased_at_by_session(session_ids: Iterable[str]) -> dict[str, datetime]:
    """When the shopper owning each of these sessions was erased (others are absent)."""
    return _erased_at(session_ids, held_erasures(), sessions=True)


def _erased_at(
    ids: Iterable[str], held: "HeldErasures | None", *, sessions: bool
) -> dict[str, datetime]:
    """From the digests held in process, or, when there are too many to hold, one query."""
    if held is not None:
        return _look_up(ids, held.by_session if sessions else held.by_user)
    if sessions:
        return _last_erasures(ids, ErasedSession.objects, "session_digest", "erasure__erased_at")
    return _last_erasures(ids, ErasureRecord.objects, "subject_digest", "erased_at")


# The event path asks about every shopper of every batch, and erasures are rare: their digests
# are held in process and reloaded when a table's newest row changes (one cheap query per
# call). Beyond this many, each call queries instead. A deleted audit record keeps counting
# until the process restarts, which errs on the side of the erased shopper.
ERASURES_HELD_MAX = 100_000


@dataclass(frozen=True)
class HeldErasures:
    version: tuple  # see _erasure_version
    by_user: dict[str, datetime]  # subject digest -> last erased_at
    by_session: dict[str, datetime]  # session digest -> last erased_at


_held: HeldErasures | None = None


def held_erasures() -> HeldErasures | None:
    """The erased digests, current as of this call; None when there are too many to hold."""
    global _held
    version = _erasure_version()
    if _held is not None and _held.version == version:
        return _held
    if (version[0] or 0) > ERASURES_HELD_MAX or (version[2] or 0) > ERASURES_HELD_MAX:
        return None  # ids are a bound on the row counts; counting would scan the table
    by_user: dict[str, datetime] = {}
    for digest, erased_at in ErasureRecord.objects.values_list("subject_digest", "erased_at"):
        by_user[digest] = max(erased_at, by_user.get(digest, erased_at))
    by_session: dict[str, datetime] = {}
    for digest, erased_at in ErasedSession.objects.values_list(
        "session_digest", "erasure__erased_at"
    ):
        by_session[digest] = max(erased_at, by_session.get(digest, erased_at))
    _held = HeldErasures(version, by_user, by_session)
    return _held


def _erasure_version() -> tuple:
    """The newest audit record (id and time: an id alone comes back after a rolled-back
    erasure) and the newest erased session."""
    records, sessions = ErasureRecord._meta.db_table, ErasedSession._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {records}), (SELECT MAX(erased_at) FROM {records}), "
            f"(SELECT MAX(id) FROM {sessions})"
        )
        return tuple(cursor.fetchone())


def _look_up(ids: Iterable[str], held: dict[str, datetime]) -> dict[str, datetime]:
    if not held:
        return {}
    found = {}
    for shopper_id in set(ids):
        if shopper_id and (erased_at := held.get(subject_digest(shopper_id))) is not None:
            found[shopper_id] = erased_at
    return found


def _last_erasures(
    ids: Iterable[str], rows: models.Manager, digest_field: str, erased_at: str
) -> dict[str, datetime]:
    by_digest = {subject_digest(i): i for i in set(ids) if i}
    if not by_digest:
        return {}
    found = (
        rows.filter(**{f"{digest_field}__in": list(by_digest)})
        .order_by()
        .values(digest_field)
        .annotate(last=Max(erased_at))
        .values_list(digest_field, "last")
    )
    return {by_digest[digest]: last for digest, last in found}


def without_erased_shoppers(records: Sequence[EventRecord]) -> list[EventRecord]:
    """The records minus events of erased shoppers (by user, or by one of their sessions) that
    happened before the erasure: a batch still queued when the erasure ran must not bring the
    shopper back. Later events are new activity and stay."""
    held = held_erasures()  # asked once for the batch's users and sessions
    by_user = _erased_at((r.user_id for r in records), held, sessions=False)
    by_session = _erased_at((r.session_id for r in records), held, sessions=True)
    if not by_user and not by_session:
        return list(records)

    def erased_before(record: EventRecord) -> bool:
        moments = [by_user.get(record.user_id), by_session.get(record.session_id)]
        return any(m is not None and _aware(record.occurred_at) <= m for m in moments)

    return [record for record in records if not erased_before(record)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def erase_shopper(user_id: str, *, requested_by: str) -> ErasureRecord:
    """Erase one shopper (see the module docstring); returns the audit record with the counts
    by kind. Idempotent: erasing again removes nothing more and records zeros.

    The record is committed first (call this outside a transaction): from then on the event
    path drops this user's queued events (without_erased_shoppers), so none lands behind the
    deletion. The database is swept again
    at the end for rows that a batch or the served-list drain was writing meanwhile."""
    if not user_id or len(user_id) > MAX_ID_LENGTH:
        raise ValueError(f"A user id has 1 to {MAX_ID_LENGTH} characters.")
    record = ErasureRecord.objects.create(
        subject_digest=subject_digest(user_id), requested_by=requested_by[:150], counts={}
    )
    counts: Counter[str] = Counter()
    sessions = shopper_sessions(user_id)
    # Remembered (as digests) before anything is deleted: from now on the event path also drops
    # queued anonymous events of these sessions.
    ErasedSession.objects.bulk_create(
        [ErasedSession(erasure=record, session_digest=subject_digest(s)) for s in sessions],
        batch_size=1000,
    )
    client = redis_clients.worker_client()
    # Stream first: entries the drain is storing right now end up in the final sweep.
    counts["served_log_entries"] = _erase_from_served_stream(client, user_id, sessions)
    events = event_records(_events_of(user_id, sessions))
    counts.update(_erase_rows(user_id, sessions))
    counts.update(_erase_redis_keys(client, user_id, sessions, events))
    counts.update(_erase_rows(user_id, sessions))
    # Events past the retention window live on in the archive files (recs.events.retention).
    counts["archived_events"] = erase_from_archive(user_id, sessions)
    counts["sessions"] = len(sessions)
    record.counts = {kind: counts[kind] for kind in COUNT_KINDS}
    record.save(update_fields=["counts"])
    return record


def erasure_preview(user_id: str) -> dict[str, int]:
    """What an erasure of this id would find in the database, for a confirmation page."""
    sessions = shopper_sessions(user_id)
    return {
        "sessions": len(sessions),
        "events": Event.objects.filter(_events_of(user_id, sessions)).count(),
    }


def command_requester() -> str:
    """requested_by for erasures run from a shell: the operating-system user."""
    try:
        return f"command:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "command"


def shopper_sessions(user_id: str) -> set[str]:
    """The shopper's sessions: linked at login, or named on their own events or served lists."""
    sessions = set(SessionLink.objects.filter(user_id=user_id).values_list("session_id", flat=True))
    for model in (Event, ServedList):
        sessions.update(
            model.objects.filter(user_id=user_id)
            .exclude(session_id="")
            .values_list("session_id", flat=True)
            .distinct()
        )
    return sessions


def _events_of(user_id: str, sessions: set[str]) -> Q:
    condition = Q(user_id=user_id)
    for chunk in batched(sorted(sessions), SQL_CHUNK):
        condition |= Q(session_id__in=chunk)
    return condition


def _erase_rows(user_id: str, sessions: set[str]) -> Counter[str]:
    """Delete the shopper's rows, a bounded IN list at a time, in one transaction."""
    counts: Counter[str] = Counter()
    subjects = [f"session:{session}" for session in sessions]
    with transaction.atomic():
        counts["events"] += Event.objects.filter(user_id=user_id).delete()[0]
        counts["session_links"] += SessionLink.objects.filter(user_id=user_id).delete()[0]
        counts["served_lists"] += ServedList.objects.filter(
            Q(user_id=user_id) | Q(subject_id=user_id)
        ).delete()[0]
        for chunk in batched(sorted(sessions), SQL_CHUNK):
            counts["events"] += Event.objects.filter(session_id__in=chunk).delete()[0]
            counts["session_links"] += SessionLink.objects.filter(session_id__in=chunk).delete()[0]
            counts["served_lists"] += ServedList.objects.filter(session_id__in=chunk).delete()[0]
        for chunk in batched(sorted(subjects), SQL_CHUNK):
            counts["served_lists"] += ServedList.objects.filter(subject_id__in=chunk).delete()[0]
    return counts


def _names_shopper(entry: dict, user_id: str, sessions: set[str]) -> bool:
    context = entry.get("context") or {}
    subject = entry.get("subject_id") or ""
    return (
        user_id in (entry.get("user_id"), context.get("user_id"), subject)
        or entry.get("session_id") in sessions
        or context.get("session_id") in sessions
        or subject.removeprefix("session:") in sessions
    )


def _erase_from_served_stream(client, user_id: str, sessions: set[str]) -> int:
    """XDEL the not-yet-drained served-list entries naming the shopper. An entry naming the
    user and a session the database did not know adds that session (and another pass finds
    the session's entries that came before it)."""
    deleted = 0
    while True:
        known = len(sessions)
        last_id = "-"
        while entries := client.xrange(redis_keys.SERVED_LOG, min=last_id, count=STREAM_CHUNK):
            doomed = []
            for entry_id, fields in entries:
                try:
                    entry = json.loads(fields[b"entry"])
                except (KeyError, ValueError):
                    continue
                if entry.get("user_id") == user_id and entry.get("session_id"):
                    sessions.add(entry["session_id"])
                if _names_shopper(entry, user_id, sessions):
                    doomed.append(entry_id)
            if doomed:
                deleted += client.xdel(redis_keys.SERVED_LOG, *doomed)
            last_id = "(" + entries[-1][0].decode()
        if len(sessions) == known:
            return deleted


def _feature_keys(user_id: str, sessions: set[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(keys of the shopper's own, (shared key, member)) of every stored user and session
    feature, built by the features' own storage_key. A feature whose key does not depend on
    the id (a scalar score shared by all entities) holds the id as a member instead."""
    own: list[str] = []
    shared: list[tuple[str, str]] = []
    ids = {"user": [user_id], "session": sorted(sessions)}
    for feature in stored_features():
        if feature.entity not in SHOPPER_ENTITIES:
            continue
        storage_key = feature.aggregation.storage_key
        for entity_id in ids[feature.entity]:
            key = storage_key(feature.entity, feature.name, entity_id)
            if key == storage_key(feature.entity, feature.name, entity_id + "-other"):
                shared.append((key, entity_id))
            else:
                own.append(key)
    return own, shared


def _marker_keys(events: Sequence[EventRecord], user_id: str, cluster: bool) -> Iterator[str]:
    """The applied-once markers of these events (recs.features.online): `ev:<id>[:user]`; on a
    cluster one per hash slot an event's updates touch, `ev:{<slot tag>}:<id>[:user]`. On a
    cluster every slot any feature key of the event's entities lives in is named (a superset:
    deleting an absent key costs nothing, and it does not depend on which ops were fresh)."""
    entities = ("user", "session", "product", "segment")
    features = stored_features()
    for record in events:
        if not cluster:
            yield redis_keys.event_marker(record.event_id)
            yield redis_keys.event_marker(record.event_id, ":user")
            continue
        event = FeatureEvent.from_record(record, linked_user_id=user_id)
        slots = {
            redis_clients.slot_of(feature.aggregation.storage_key(entity, feature.name, entity_id))
            for entity in entities
            for entity_id in event.entity_ids(entity)
            for feature in features
            if feature.entity == entity
        }
        for slot in slots:
            tag = redis_clients.slot_tag(slot)
            yield redis_keys.slotted_event_marker(tag, redis_keys.event_marker(record.event_id))
            yield redis_keys.slotted_event_marker(
                tag, redis_keys.event_marker(record.event_id, ":user")
            )


def _scan(client, pattern: str) -> Iterator[bytes]:
    """SCAN MATCH over the whole keyspace: every primary on a cluster."""
    if redis_clients.is_cluster(client):
        return client.scan_iter(
            match=pattern, count=SCAN_COUNT, target_nodes=RedisCluster.PRIMARIES
        )
    return client.scan_iter(match=pattern, count=SCAN_COUNT)


def _model_user_lists(client, user_id: str) -> list[str]:
    """The per-model lists of experiment variants (redis_keys.model_user_list) of any learner
    key: the keys are whatever experiments named over time, so they are found by SCAN (learner
    keys hold no colon, so a longer id ending in this one is not taken for it)."""
    prefix = redis_keys.MODEL_USER_LIST_PREFIX
    found = []
    for raw in _scan(client, f"{prefix}*:{redis_keys.glob_escape(user_id)}"):
        key = raw.decode()
        model_key, _, owner = key.removeprefix(prefix).partition(":")
        if owner == user_id and model_key:
            found.append(key)
    return found


def _unlink(client, keys: Sequence[str]) -> int:
    """UNLINK one key per command, pipelined: never a command spanning hash slots."""
    removed = 0
    for start in range(0, len(keys), KEY_CHUNK):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + KEY_CHUNK]:
            pipe.unlink(key)
        removed += sum(pipe.execute())
    return removed


def _erase_redis_keys(
    client, user_id: str, sessions: set[str], events: Sequence[EventRecord]
) -> Counter[str]:
    cluster = redis_clients.is_cluster(client)
    own, shared = _feature_keys(user_id, sessions)
    counts: Counter[str] = Counter()
    counts["online_features"] = _unlink(client, own)
    if shared:
        pipe = client.pipeline(transaction=False)
        for key, member in shared:
            pipe.zrem(key, member)
        counts["online_features"] += sum(pipe.execute())
    counts["event_markers"] = _unlink(client, list(_marker_keys(events, user_id, cluster)))
    user_lists = [
        redis_keys.user_list(user_id),
        redis_keys.last_known_good_list(user_id),
        *_model_user_lists(client, user_id),
    ]
    counts["candidate_lists"] = _unlink(client, user_lists)
    counts["pending_rescores"] = _unlink(client, [redis_keys.rescore_pending(user_id)])
    return counts
