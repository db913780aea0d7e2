"""Moving the served-list stream from Redis into the ServedList table (at least once, deduped)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime

from recs import redis_keys
from recs.candidates.store import writer_client
from recs.models import ServedList

DRAIN_CHUNK = 2000


def served_list_from(entry: dict, *, is_shadow: bool = False, shadow_of: str = "") -> ServedList:
    return ServedList(
        rec_id=entry["rec_id"],
        served_at=datetime.fromtimestamp(entry["served_at"], tz=UTC),
        placement=entry["placement"],
        experiment_id=entry.get("experiment_id"),
        variant=entry.get("variant", ""),
        is_shadow=is_shadow,
        shadow_of=shadow_of,
        model_version=entry.get("model_version", ""),
        tier=entry.get("tier", ""),
        source=entry.get("source", ""),
        user_id=entry.get("user_id", ""),
        session_id=entry.get("session_id", ""),
        subject_id=entry.get("subject_id", ""),
        skus=entry.get("skus", []),
    )


def drain_served_log(
    queue_shadow_scoring: Callable[[list[dict]], None], max_entries: int = 100_000
) -> int:
    """Store stream entries in the database (handing those sampled for shadow scoring to
    `queue_shadow_scoring`, see recs.experiments.tasks), then delete them from the stream. A
    crash between the two re-reads them next time; rec_id is unique, so
    nothing is stored twice (a shadow may be scored twice; its rec_id derives from the shown
    list's and the variant, so it too is stored once)."""
    client = writer_client()
    stored = 0
    while stored < max_entries:
        entries = client.xrange(redis_keys.SERVED_LOG, count=DRAIN_CHUNK)
        if not entries:
            break
        decoded = [json.loads(fields[b"entry"]) for _, fields in entries]
        rows = [served_list_from(entry) for entry in decoded]
        ServedList.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        queue_shadow_scoring([entry for entry in decoded if entry.get("shadows")])
        client.xdel(redis_keys.SERVED_LOG, *[entry_id for entry_id, _ in entries])
        stored += len(rows)
    return stored
