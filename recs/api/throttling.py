"""Rate limits: a secret key counts on its own budget; everyone else counts per client address.

Publishable keys are public, so a limit per publishable key would let one client starve every
shopper of the shop; per address, a client only uses up its own budget.
"""

import logging
import time
from dataclasses import dataclass

from django_redis.exceptions import ConnectionInterrupted
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from aisle.conf import aisle_cache, aisle_settings
from recs import redis_keys
from recs.api.authentication import is_staff, secret_key
from recs.api_keys import ApiKey
from recs.client_address import client_address
from recs.serving import redis as serving_redis
from recs.serving.types import RequestCounter

logger = logging.getLogger(__name__)


def caller_ident(request) -> str:
    """Whom a rate limit counts: the secret key, else the staff user, else the address."""
    key = secret_key(request)
    if key is not None:
        return f"key-{key.pk}"
    if not isinstance(request.auth, ApiKey) and is_staff(request):
        return f"user-{request.user.pk}"
    return f"ip-{client_address(request)}"


def caller_rate(ident: str, address_rate_setting: str) -> str:
    """The rate of a caller_ident: secret keys and staff share SERVER_KEY_THROTTLE_RATE;
    addresses get the view's per-address rate."""
    if ident.startswith("ip-"):
        return getattr(aisle_settings, address_rate_setting)
    return aisle_settings.SERVER_KEY_THROTTLE_RATE


class ApiThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle, keyed and rated by `caller_ident`/`caller_rate`; the
    per-address rate setting is the view's `throttle_rate_setting`. Fails open when its
    counters cannot be read."""

    @property
    def cache(self):
        return aisle_cache()

    def get_rate(self):
        return None  # set per request in allow_request

    def allow_request(self, request, view):
        self.rate_setting = getattr(view, "throttle_rate_setting", "EVENTS_THROTTLE_RATE")
        self.ident = caller_ident(request)
        self.rate = caller_rate(self.ident, self.rate_setting)
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except (ConnectionInterrupted, *serving_redis.REDIS_ERRORS) as error:
            # The counters live in Django's cache, whose Redis timeouts are the render path's
            # tight ones: a slow moment under load must not turn a batch into a 500. Fail open,
            # as the read API's throttle does; a Redis that is really down still answers 503
            # when the batch is queued.
            logger.warning("Throttle counters unavailable (%s); letting the request in", error)
            return True

    def get_cache_key(self, request, view):
        return redis_keys.throttle_count(self.rate_setting, self.ident)


class RenderPathThrottle(BaseThrottle):
    """Rate limit of the read API (a fixed-window counter per secret key, staff user or
    address), counted in the request's one Redis round trip: allow_request only attaches a
    `RateLimit` to the request, recommend() increments its counter with the reads, and the view
    settles it. A caller over the limit gets 429 and this process refuses them for the rest of
    the window without asking Redis. Fails open when Redis does not answer."""

    rate_setting = "RECOMMENDATIONS_THROTTLE_RATE"

    def allow_request(self, request, view) -> bool:
        ident = caller_ident(request)
        limit, duration = SimpleRateThrottle.parse_rate(None, caller_rate(ident, self.rate_setting))
        now = time.time()
        window = int(now // duration)
        self.wait_seconds = duration - (now % duration)
        key = redis_keys.throttle_count(self.rate_setting, ident, window)
        if _refused_until.get(key, 0.0) > now:
            return False
        request.rate_limit = RateLimit(
            RequestCounter(key, duration + 1), limit, (window + 1) * duration, self.wait_seconds
        )
        return True

    def wait(self) -> float:
        return self.wait_seconds


# Counters over their limit, seen by this process: key -> end of its window.
_refused_until: dict[str, float] = {}
_REFUSED_KEPT = 10_000


@dataclass
class RateLimit:
    counter: RequestCounter
    limit: int
    window_ends_at: float
    wait_s: float

    def settle(self) -> None:
        """After the request's work: count it on its own if its round trip did not carry the
        counter (a rejected query never reaches the reads), and refuse it over the limit."""
        if self.counter.value is None and serving_redis.available():
            self.counter.value = _count_alone(self.counter)
        if self.counter.value is not None and self.counter.value > self.limit:
            if len(_refused_until) > _REFUSED_KEPT:
                now = time.time()
                for key in [k for k, until in _refused_until.items() if until <= now]:
                    _refused_until.pop(key, None)
            _refused_until[self.counter.key] = self.window_ends_at
            raise Throttled(wait=self.wait_s)


def rate_limit_of(request) -> RateLimit | None:
    """The RateLimit RenderPathThrottle attached to this request, if any."""
    return getattr(request, "rate_limit", None)


def clear() -> None:
    """Forget the refusals this process remembers (tests)."""
    _refused_until.clear()


def _count_alone(counter: RequestCounter) -> int | None:
    try:
        pipe = serving_redis.reader_client().pipeline(transaction=False)
        pipe.incr(counter.key)
        pipe.expire(counter.key, counter.ttl_s)
        count, _ = pipe.execute()
    except serving_redis.REDIS_ERRORS:
        serving_redis.trip()
        return None
    return int(count)
