"""Throttling per storefront key (or per staff user), rates from settings."""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from recs.keys import StorefrontKey
from recs.serving import redis as serving_redis


class StorefrontKeyThrottle(SimpleRateThrottle):
    """Rate limit per key; the rate setting is named by the view's `throttle_rate_setting`."""

    view_rate_setting = "EVENTS_THROTTLE_RATE"

    def get_rate(self):
        return getattr(settings, self.view_rate_setting, None)

    def allow_request(self, request, view):
        self.view_rate_setting = getattr(view, "throttle_rate_setting", "EVENTS_THROTTLE_RATE")
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, StorefrontKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return f"throttle:{self.view_rate_setting}:{ident}"


class RenderPathThrottle(BaseThrottle):
    """Rate limit of the read API in one pipelined Redis round trip (a fixed-window counter per
    key, staff user or address), on the render path's own client and breaker: DRF's default
    throttle takes two round trips and pickles a growing history list per caller. Fails open."""

    rate_setting = "RECOMMENDATIONS_THROTTLE_RATE"

    def allow_request(self, request, view) -> bool:
        limit, duration = SimpleRateThrottle.parse_rate(None, getattr(settings, self.rate_setting))
        if isinstance(request.auth, StorefrontKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
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
