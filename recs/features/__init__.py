"""The feature store: one declaration per feature, served online from Redis and offline from the log.

from recs import features
features.get_online("user", "u-1", ["interaction_count", "session_count_168h"])
features.get_historical([("user", "u-1", as_of)], ["interaction_count"])
"""

from recs.features.offline import get_historical
from recs.features.online import apply_events, get_online, get_online_many

__all__ = ["apply_events", "get_historical", "get_online", "get_online_many"]
