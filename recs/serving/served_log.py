"""The served-list log: every list served in a live experiment, for attribution by rec_id.

The render path appends one entry to a Redis stream; on one Redis server it sends the entry
without waiting for an answer (CLIENT REPLY SKIP), so a logged request still makes one round
trip (on a cluster the append waits for its reply). For a sample of requests
the entry also carries the context to score the experiment's shadow variants with. A worker
moves the stream into the ServedList table and queues the shadow scoring
(recs.experiments.served). Logging cannot fail a page: errors are logged, the answer served.
"""

import json
import logging
import random

from aisle.conf import aisle_settings
from recs import redis_clients, redis_keys
from recs.serving.redis import REDIS_ERRORS
from recs.serving.types import RecommendationContext, Recommendations

logger = logging.getLogger(__name__)


def entry_of(context: RecommendationContext, result: Recommendations, variant) -> dict:
    return {
        "rec_id": result.rec_id,
        "served_at": result.served_at,
        "placement": result.placement,
        "experiment_id": variant.experiment_id,
        "variant": result.variant,
        "model_version": result.model_version,
        "tier": result.tier,
        "source": result.source,
        "user_id": context.user_id,
        "session_id": context.session_id,
        "subject_id": context.subject_id,
        "skus": [item.sku for item in result.items],
    }


def record(client, context: RecommendationContext, result: Recommendations, variant) -> None:
    """Append the served list to the stream; a sampled one also names the shadow variants to
    score for it, which the worker draining the stream queues (no broker call on a page)."""
    entry = entry_of(context, result, variant)
    if variant.shadows and random.random() < aisle_settings.SHADOW_SAMPLE_RATE:
        entry["shadows"] = [v.name for v in variant.shadows]
        entry["context"] = context_message(context)
    payload = json.dumps(entry, separators=(",", ":"))
    try:
        if redis_clients.is_cluster(client):
            client.xadd(
                redis_keys.SERVED_LOG, {"entry": payload},
                maxlen=aisle_settings.SERVED_LOG_MAX_ENTRIES, approximate=True,
            )  # fmt: skip
        else:
            send_without_reply(client, "XADD", redis_keys.SERVED_LOG, "MAXLEN", "~",
                               aisle_settings.SERVED_LOG_MAX_ENTRIES, "*", "entry", payload)  # fmt: skip
    except REDIS_ERRORS:
        logger.warning("Could not log served list %s", result.rec_id)


def send_without_reply(client, *command) -> None:
    """Send one command that Redis runs without answering (CLIENT REPLY SKIP): the request
    does not wait for it. A failure on the server is not seen; one in sending raises."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command(
            connection.pack_commands([("CLIENT", "REPLY", "SKIP"), command])
        )
    except BaseException:
        connection.disconnect()  # half a command may be on the wire: never reuse it
        raise
    finally:
        pool.release(connection)


def context_message(context: RecommendationContext) -> dict:
    return {
        "placement": context.placement, "user_id": context.user_id,
        "session_id": context.session_id, "product_sku": context.product_sku,
        "cart_skus": list(context.cart_skus), "category_path": context.category_path,
        "device": context.device, "country": context.country, "referrer": context.referrer,
        "limit": context.limit,
    }  # fmt: skip
