"""Every Redis key the engine reads or writes, named and built here and nowhere else.

One module so that the layout can be read in one place, changed in one place (a cluster's hash
tags, a new list family), and so that a scan, an erasure or a rebuild finds every key a writer
made. Builders take the variable parts; constants are the fixed keys. Every key starts with
AISLE["REDIS_KEY_PREFIX"] (empty by default; left out below), so installs can share a Redis.

  Candidate lists (JSON [[sku, score], ...], best first; replaced, never expired)
    c:user:<user>                 top-N of a shopper (serving collaborative model)
    c:lkg:user:<user>             the shopper's previous list, their last-known-good
    c:user@<model>:<user>         a shopper's list from the model an experiment variant serves
    c:similar:cf:<sku>            collaborative neighbours of a product
    c:similar:content:<sku>       content neighbours (also of products nobody bought yet)
    c:fbt:<sku>                   frequently bought together
    c:popular:<segment>           segment = all | country:<X> | hour:<band> | category:<path>
    c:trending:all                time-decayed popularity, from the last training
    c:meta                        hash: model versions and generation time of the lists
  Availability and versions web processes watch
    avail:unavailable             set of SKUs that must not be served (updated at commit)
    avail:synced                  present while that set is complete
    cat:version, cfg:merch:version  bumped when catalog cards / merchandising config change
  Online feature store (recs.features)
    f:<entity>:<feature>:{<id>}   one entity's feature; the id is a cluster hash tag
    f:<entity>:<feature>          a score shared by all entities of a kind (trending products)
    f:layout                      the layout version the store was written in
    ev:<event id>[:user]          applied-once marker of an event (ev:{<slot tag>}:... on a cluster)
  Work in flight, logs and counters
    rescore:pending:<user>        a debounced re-score is queued for the shopper
    heal:<what>                   a repair after Redis lost its data is queued
    served:log                    stream of served lists, drained into the database
    m:events, m:serving:total, m:serving:<hour>   counters for /metrics and the dashboards
    health:worker-heartbeat       the last beat a worker ran
    health:event-archive          hash: what the last archive run of old events did
    lock:event-archive            held while an archive run of old events works
"""

from aisle.conf import aisle_settings

# AISLE["REDIS_KEY_PREFIX"], read once at import: two installs sharing a Redis differ by it.
PREFIX: str = aisle_settings.REDIS_KEY_PREFIX

# Candidate lists
CANDIDATE_LIST_PREFIX = PREFIX + "c:"
USER_LIST_PREFIX = PREFIX + "c:user:"
LAST_KNOWN_GOOD_PREFIX = PREFIX + "c:lkg:user:"
MODEL_USER_LIST_PREFIX = PREFIX + "c:user@"
SIMILAR_CF_PREFIX = PREFIX + "c:similar:cf:"
SIMILAR_CONTENT_PREFIX = PREFIX + "c:similar:content:"
BOUGHT_TOGETHER_PREFIX = PREFIX + "c:fbt:"
POPULAR_PREFIX = PREFIX + "c:popular:"
TRENDING_PREFIX = PREFIX + "c:trending:"
POPULAR_ALL = PREFIX + "c:popular:all"
TRENDING_ALL = PREFIX + "c:trending:all"
CANDIDATES_META = PREFIX + "c:meta"


def user_list(user_id: str) -> str:
    return USER_LIST_PREFIX + user_id


def last_known_good_list(user_id: str) -> str:
    return LAST_KNOWN_GOOD_PREFIX + user_id


def model_user_list(model_key: str, user_id: str) -> str:
    """A variant's per-model list; learner keys hold no colon, so the owner is what follows."""
    return f"{MODEL_USER_LIST_PREFIX}{model_key}:{user_id}"


def model_meta_field(model_key: str) -> str:
    """The field of CANDIDATES_META that says which version wrote a model's per-user lists."""
    return f"user@{model_key}"


def similar_cf_list(sku: str) -> str:
    return SIMILAR_CF_PREFIX + sku


def similar_content_list(sku: str) -> str:
    return SIMILAR_CONTENT_PREFIX + sku


def bought_together_list(sku: str) -> str:
    return BOUGHT_TOGETHER_PREFIX + sku


def popular_list(segment: str | None) -> str:
    """A segment's popular list ("country:Germany", "category:home"); None or "all" is global."""
    return POPULAR_PREFIX + (segment or "all")


def category_popular_list(category_path: str) -> str:
    return popular_list(f"category:{category_path}")


def country_popular_list(country: str) -> str:
    return popular_list(f"country:{country}")


def hour_popular_list(band: str) -> str:
    return popular_list(f"hour:{band}")


# Availability, and the versions web processes compare with what they hold in memory. The
# sold-out set, its version and its change log share one hash slot ({avail}) so that one script
# updates them together, on one server or a cluster.
UNAVAILABLE = PREFIX + "{avail}:unavailable"
# Hash: epoch (a new one each time the set is rebuilt from nothing), version (one per change).
UNAVAILABLE_STATE = PREFIX + "{avail}:state"
# Stream of changes, entry id "<version>-0", fields `out` and `in` (SKUs joined by \x1f).
UNAVAILABLE_CHANGES = PREFIX + "{avail}:changes"
# The three, in the order the availability scripts take them as KEYS.
AVAILABILITY_KEYS = (UNAVAILABLE, UNAVAILABLE_STATE, UNAVAILABLE_CHANGES)
# Keys of the layout before the sold-out set moved into {avail} (removed by sync_unavailable).
LEGACY_AVAILABILITY_KEYS = (PREFIX + "avail:unavailable", PREFIX + "avail:synced")
CATALOG_VERSION = PREFIX + "cat:version"
API_KEYS_VERSION = PREFIX + "cfg:api-keys:version"  # bumped when a key is revoked or edited
MERCH_CONFIG_VERSION = PREFIX + "cfg:merch:version"

# Online feature store
FEATURE_PREFIX = PREFIX + "f:"
FEATURE_LAYOUT = PREFIX + "f:layout"
EVENT_MARKER_PREFIX = PREFIX + "ev:"


def entity_feature(entity: str, name: str, entity_id: str) -> str:
    """`f:<entity>:<feature>:{<id>}`: the id is a hash tag, so on a Redis Cluster all of an
    entity's features share one hash slot; an event's updates then touch a few slots (user,
    session, product, segments, the shared trending set) rather than one per feature. (An id
    holding braces still tags every key of that id alike.)"""
    return f"{FEATURE_PREFIX}{entity}:{name}:{{{entity_id}}}"


def shared_feature(entity: str, name: str) -> str:
    """A score of many entities kept in one sorted set, so that it ranks them (trending)."""
    return f"{FEATURE_PREFIX}{entity}:{name}"


TRENDING_SCORES = shared_feature("product", "trending_score")


def event_marker(event_id: str, suffix: str = "") -> str:
    """The applied-once marker of an event's updates (suffix ":user" for the user's share)."""
    return f"{EVENT_MARKER_PREFIX}{event_id}{suffix}"


def slotted_event_marker(slot_tag: str, marker: str) -> str:
    """On a cluster: the marker of the part of an event's updates that lives in one hash slot."""
    return f"{EVENT_MARKER_PREFIX}{{{slot_tag}}}:{marker.removeprefix(EVENT_MARKER_PREFIX)}"


# Work in flight
def rescore_pending(user_id: str) -> str:
    return PREFIX + f"rescore:pending:{user_id}"


def heal_lock(what: str) -> str:
    """Held while the repair of `what` ("candidates", "features") is queued or running."""
    return PREFIX + f"heal:{what}"


# Logs, counters, health
SERVED_LOG = PREFIX + "served:log"
EVENTS_METRICS = PREFIX + "m:events"
SERVING_TOTALS = PREFIX + "m:serving:total"
WORKER_HEARTBEAT = PREFIX + "health:worker-heartbeat"
EVENT_ARCHIVE_LAST_RUN = PREFIX + "health:event-archive"
EVENT_ARCHIVE_LOCK = PREFIX + "lock:event-archive"


def serving_hourly(hour: int | str) -> str:
    return PREFIX + f"m:serving:{hour}"


def throttle_count(scope: str, ident: str, window: int | None = None) -> str:
    """The cache key of a caller's request count in a throttle window (django-redis cache)."""
    suffix = "" if window is None else f":{window}"
    return PREFIX + f"throttle:{scope}:{ident}{suffix}"


def glob_escape(text: str) -> str:
    """`text` as a literal inside a SCAN MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
