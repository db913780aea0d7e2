"""The client's address as throttles, login lockouts and checkout limits count it."""

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle


def client_address(request: HttpRequest) -> str:
    """DRF's throttle identity: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT (NUM_PROXIES) proxies
    in front, the address the outermost trusted proxy saw in X-Forwarded-For, so a client
    cannot pick its own address by sending the header. One rule for every per-address limit."""
    return BaseThrottle().get_ident(request)
