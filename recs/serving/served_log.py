"""The served-list log: every list served in a live experiment, for attribution by rec_id.

The render path appends one entry to a Redis stream (one pipelined command) and, for a sample
of requests, queues the scoring of the experiment's shadow variants; a worker moves the stream
into the ServedList table (recs.experiments.served). Neither can fail or slow a page: errors
are logged and the answer is served anyway.
"""

import json
import logging
import random

from django.conf import settings

from recs.serving.redis import REDIS_ERRORS
from recs.serving.types import RecommendationContext, Recommendations

logger = logging.getLogger(__name__)

STREAM_KEY = "served:log"


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
    entry = entry_of(context, result, variant)
    try:
        client.xadd(
            STREAM_KEY,
            {"entry": json.dumps(entry, separators=(",", ":"))},
            maxlen=settings.SERVED_LOG_MAX_ENTRIES,
            approximate=True,
        )
    except REDIS_ERRORS:
        logger.warning("Could not log served list %s", result.rec_id)
    if variant.shadows and random.random() < settings.SHADOW_SAMPLE_RATE:
        from recs.experiments.tasks import score_shadows_task

        try:
            score_shadows_task.apply_async(
                args=[context_message(context), entry, [v.name for v in variant.shadows]],
                retry=False,
            )
        except Exception:  # the broker is down: a shadow sample is not worth a slow page
            logger.warning("Could not queue shadow scoring for %s", result.rec_id)


def context_message(context: RecommendationContext) -> dict:
    return {
        "placement": context.placement, "user_id": context.user_id,
        "session_id": context.session_id, "product_sku": context.product_sku,
        "cart_skus": list(context.cart_skus), "category_path": context.category_path,
        "device": context.device, "country": context.country, "referrer": context.referrer,
        "limit": context.limit,
    }  # fmt: skip
