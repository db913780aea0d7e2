"""Throttling per storefront key (or per staff user), rates from settings."""

import logging
import time

from django.conf import settings
from django_redis.exceptions import ConnectionInterrupted
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from recs.keys import StorefrontKey
from recs.serving import redis as serving_redis

logger = logging.getLogger(__name__)


def caller_ident(throttle: BaseThrottle, request) -> str:
    """Whom a rate limit counts: the storefront key, else the staff user, else the address."""
    if isinstance(request.auth, StorefrontKey):
        return f"key-{request.auth.pk}"
    if request.user and request.user.is_authenticated:
        return f"user-{request.user.pk}"
    return f"ip-{throttle.get_ident(request)}"


class StorefrontKeyThrottle(SimpleRateThrottle):
    """Rate limit per key; the rate setting is named by the view's `throttle_rate_setting`.
    Fails open when its counters cannot be read."""

    view_rate_setting = "EVENTS_THROTTLE_RATE"

    def get_rate(self):
        return getattr(settings, self.view_rate_setting, None)

    def allow_request(self, request, view):
        self.view_rate_setting = getattr(view, "throttle_rate_setting", "EVENTS_THROTTLE_RATE")
        self.rate = self.get_rate()
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
        return f"throttle:{self.view_rate_setting}:{caller_ident(self, request)}"


class RenderPathThrottle(BaseThrottle):
    """Rate limit of the read API in one pipelined Redis round trip (a fixed-window counter per
    key, staff user or address), on the render path's own client and breaker: DRF's default
    throttle takes two round trips and pickles a growing history list per caller. Fails open."""

    rate_setting = "RECOMMENDATIONS_THROTTLE_RATE"

    def allow_request(self, request, view) -> bool:
        limit, duration = SimpleRateThrottle.parse_rate(None, getattr(settings, self.rate_setting))
        ident = caller_ident(self, request)
        now = time.time()
        window = int(now // duration)
        self.wait_seconds = duration - (now % duration)
        if not serving_redis.available():
            return True
        key = f"throttle:{self.rate_setting}:{ident}:{window}"
        try:
            pipe = serving_redis.reader_client().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, duration + 1)
            count, _ = pipe.execute()
        except serving_redis.REDIS_ERRORS:
            serving_redis.trip()
            return True
        return count <= limit

    def wait(self) -> float:
        return self.wait_seconds
