"""Throttling per storefront key (or per staff user), rates from settings."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from recs.keys import StorefrontKey


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


class FailOpenThrottle(StorefrontKeyThrottle):
    """For the render path: when the cache (Redis) behind the counters is down, let the request
    through rather than fail a page over a rate limit."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:
            return True
