"""Fresh collaborative lists after a shopper's events, debounced, off the render path.

A burst of clicks schedules one re-score per user: the first event sets a pending marker and
queues the task RESCORE_DEBOUNCE_S later (recs.candidates.tasks.schedule_rescores); events arriving meanwhile find the marker and add
nothing. The task scores the user's training row plus what they touched since (from the
online feature store) with the serving collaborative learner and replaces their cached list;
the list it replaces becomes their last-known-good list.
"""

import logging
from collections.abc import Callable, Sequence

from aisle.conf import aisle_settings
from recs import redis_keys
from recs.candidates.refresh import depth_for, fill_past_unavailable, unavailable_now
from recs.candidates.store import read_meta, write_lists, writer_client
from recs.features.online import get_online
from recs.learners import Learner
from recs.serving import blend_table

logger = logging.getLogger(__name__)


def rescore_history(purchased: Sequence[str], recently_viewed: Sequence[str]) -> list[str]:
    """What a re-score scores from (both newest first in the feature store): oldest first, as
    learners expect; purchases before views they may have led to."""
    return list(dict.fromkeys([*reversed(purchased), *reversed(recently_viewed)]))


def rescore_user(user_id: str, load_learner: Callable[[str], Learner | None]) -> bool:
    """Replace the user's cached list with one that knows their latest events; False when the
    user's tier does not blend in their own list or no collaborative model serves."""
    # Cleared first: an event that lands while we score schedules another pass.
    writer_client().delete(redis_keys.rescore_pending(user_id))
    features = get_online(
        "user", user_id, ["interaction_count", "recently_viewed", "purchased_products"]
    )
    # Re-scored where the shopper's tier blends in their own list (the tuned blend table).
    table = blend_table.tier_table(read_meta().get("blend"))
    if table[blend_table.tier_of(features["interaction_count"])]["user_list"] <= 0:
        return False
    learner = load_learner("user")
    if learner is None:
        return False
    history = rescore_history(features["purchased_products"], features["recently_viewed"])
    size = aisle_settings.USER_CANDIDATES_SIZE
    unavailable = unavailable_now()
    ranked = learner.recommend(user_id, history, depth_for(size, unavailable))
    write_lists([(redis_keys.user_list(user_id), fill_past_unavailable(ranked, size, unavailable))])
    return True
