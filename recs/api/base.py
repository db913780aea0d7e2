"""The base of every /api/v1 view: who a request can be (an API key or a staff session), how often
it may come, how its body is parsed and how its errors look. All of it is set here rather than
taken from the host project's global REST_FRAMEWORK settings, so the API behaves the same in any
Django project. Each view adds what it allows (its permission) and its own rate."""

from drf_spectacular.openapi import AutoSchema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from recs.api.authentication import ApiKeyAuthentication
from recs.api.errors import error_envelope_exception_handler
from recs.api.parsers import BoundedJSONParser
from recs.api.throttling import ApiThrottle


class AisleAPIView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]  # nothing is open unless a view says who may call it
    throttle_classes = [ApiThrottle]
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    schema = AutoSchema()
    # The rate of callers that are not secret keys or staff (who share SERVER_KEY_THROTTLE_RATE).
    throttle_rate_setting = "SERVER_KEY_THROTTLE_RATE"

    def get_exception_handler(self):
        return error_envelope_exception_handler
