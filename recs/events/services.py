"""Event writes: apply a queued batch to the log and the online store.

A batch is applied at least once (acks_late) and takes effect exactly once: the event log dedupes
by event_id (unique), and the online store by a per-event marker written in the same Redis script
as the event's feature updates.
"""

import logging
import time
from collections.abc import Iterable, Sequence

from django.db.models import Q

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates.tasks import schedule_rescores
from recs.events.log import INSERT_CHUNK_SIZE, insert_events, insert_session_links
from recs.events.records import EventRecord
from recs.events.selectors import event_records
from recs.features import online
from recs.features.enrich import enrich, session_links
from recs.models import Event

RESCORING_EVENT_TYPES = frozenset({"view", "click", "add_to_cart", "purchase"})

logger = logging.getLogger(__name__)


def persist_events(records: Iterable[EventRecord], *, batch_id: str = "") -> set[str]:
    """Append events to the log (duplicates by event_id are skipped); returns the event ids that
    this batch owns: stored by it now or by an earlier delivery of the same batch. When every
    row went in, all are owned; otherwise the owned ids are read back."""
    unique = list({record.event_id: record for record in records}.values())
    if not unique:
        return set()
    inserted = insert_events(unique, batch_id=batch_id)
    ids = [r.event_id for r in unique]
    if inserted == len(ids):
        return set(ids)
    owned: set[str] = set()
    for start in range(0, len(ids), INSERT_CHUNK_SIZE):
        owned.update(
            Event.objects.filter(
                event_id__in=ids[start : start + INSERT_CHUNK_SIZE], ingest_batch_id=batch_id
            ).values_list("event_id", flat=True)
        )
    return owned


def record_event_lag(lag_s: float, events: int) -> None:
    """Queue-to-applied delay of the batch just applied, for the health panel and /metrics."""
    try:
        client = online.redis_client()
        pipe = client.pipeline(transaction=False)
        pipe.hset(redis_keys.EVENTS_METRICS, mapping={"last_lag_s": f"{lag_s:.3f}",
                                               "last_applied_at": f"{time.time():.3f}"})  # fmt: skip
        pipe.hincrby(redis_keys.EVENTS_METRICS, "applied_total", events)
        pipe.hincrbyfloat(redis_keys.EVENTS_METRICS, "lag_seconds_total", lag_s * events)
        pipe.execute()
    except Exception:  # a metric must never fail a batch
        logger.exception("Could not record event lag")


def link_sessions_to_users(logins: dict[str, str], links: dict[str, str]) -> list[str]:
    """Record that anonymous sessions logged in (session_id -> user_id) and carry their history
    over to the users in the online store. The first link of a session wins; returns the
    sessions that were not linked before. `links` (session -> user, the links the caller
    looked up for these sessions) is brought up to date with the new ones."""
    new = [session_id for session_id in logins if session_id not in links]
    if not new:
        return []
    stored = insert_session_links({session: logins[session] for session in new})
    links.update(stored)
    if len(stored) < len(new):  # the first link wins: another worker's came first
        links.update(session_links(set(new) - stored.keys()))
    replay_session_history({session: links[session] for session in new if session in links})
    return new


def replay_session_history(links: dict[str, str]) -> int:
    """Apply linked sessions' anonymous events to their users (`links`: session -> user).
    Idempotent per event, so a replay that races another worker's, or runs twice, counts
    nothing twice."""
    # Filtered on the session alone: with `user_id=""` in the query, SQLite walks the
    # (user_id, occurred_at) index over every anonymous event instead of the session index.
    history = [r for r in event_records(Q(session_id__in=list(links))) if not r.user_id]
    if not history:
        return 0
    return online.apply_events(enrich(history, links=links), entities=("user",))


def apply_event_batch(
    batch_id: str,
    records: Sequence[EventRecord],
    *,
    rescore: bool = True,
    enqueued_at: float | None = None,
) -> int:
    """Store a batch in the event log and fold the events it owns into the online store, then
    schedule debounced re-scores of the users who interacted (not for historic imports,
    which training scores anyway).

    Safe to run again for the same batch (redelivery) and safe when another batch carries a copy
    of an event: returns how many events took effect in the online store now.
    """
    from recs.erasure import without_erased_shoppers

    records = without_erased_shoppers(records)  # queued before an erasure: must not come back
    owned_ids = persist_events(records, batch_id=batch_id)
    owned = [r for r in {r.event_id: r for r in records}.values() if r.event_id in owned_ids]
    # One lookup of the batch's sessions serves the logins and the anonymous events.
    links = session_links({r.session_id for r in owned if r.session_id})
    logins = {r.session_id: r.user_id for r in owned if r.session_id and r.user_id}
    link_sessions_to_users(logins, links)
    if aisle_settings.EVENTS_APPLY_DELAY_S:
        time.sleep(aisle_settings.EVENTS_APPLY_DELAY_S)  # fault injection for tests and benchmarks
    applied = online.apply_events(enrich(owned, links=links))
    if enqueued_at is not None:
        record_event_lag(time.time() - enqueued_at, len(owned))
    if rescore:
        users = {r.user_id or "" for r in owned if r.event_type in RESCORING_EVENT_TYPES}
        try:
            schedule_rescores(users)
        except Exception:  # the lists refresh at the next event or training; never fail a batch
            logger.exception("Could not schedule re-scores for %d users", len(users))
    return applied
