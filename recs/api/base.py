"""The base of every /api/v1 view: who a request can be (an API key or a staff session) and how
often it may come. Each view adds what it allows (its permission) and its own rate."""

from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from recs.api.authentication import ApiKeyAuthentication
from recs.api.throttling import ApiThrottle


class AisleAPIView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    throttle_classes = [ApiThrottle]
    # The rate of callers that are not secret keys or staff (who share SERVER_KEY_THROTTLE_RATE).
    throttle_rate_setting = "SERVER_KEY_THROTTLE_RATE"
