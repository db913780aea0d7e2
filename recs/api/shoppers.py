"""DELETE /api/v1/shoppers/{user_id}: erase a shopper (right to erasure), for the shop's servers."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.response import Response

from recs.api.authentication import requires_secret_scope, secret_key
from recs.api.base import AisleAPIView
from recs.api.errors import error_response
from recs.api.schema import extend_schema
from recs.erasure import COUNT_KINDS, MAX_ID_LENGTH, erase_shopper
from recs.redis_clients import CONNECTION_ERRORS


class ShopperPathSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=MAX_ID_LENGTH)


class ErasureOutSerializer(serializers.Serializer):
    erased = serializers.BooleanField()
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="What was removed, by kind: " + ", ".join(COUNT_KINDS),
    )
    erased_at = serializers.DateTimeField()


def requester(request) -> str:
    """Who asked, for the audit record: the key (name and id) or the staff user."""
    key = secret_key(request)
    if key is not None:
        return f"key:{key.name}#{key.pk}"
    return f"staff:{request.user.get_username()}"


class ShopperErasureView(AisleAPIView):
    permission_classes = [requires_secret_scope("admin", staff_permission="recs.add_erasurerecord")]

    @extend_schema(
        operation_id="shoppers_erase",
        summary="Erase a shopper (right to erasure)",
        description=(
            "Removes the shopper's events and those of their sessions, session links, online "
            "features, candidate lists, served-list log and experiment exposure records; "
            "aggregates stay. Writes an audit record (who, when, counts) that keeps a keyed "
            "digest of the id, not the id. Events of the shopper still queued are dropped "
            "when applied, so training and feature rebuilds do not bring the shopper back. "
            "Idempotent: an unknown or already erased id answers 200 with zero counts, so "
            "ids cannot be enumerated. Needs a secret key with the 'admin' scope, or a staff "
            "login."
        ),
        parameters=[
            OpenApiParameter(
                "user_id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description=f"The shop's customer id (at most {MAX_ID_LENGTH} characters)",
            )
        ],
        request=None,
        responses={
            200: ErasureOutSerializer,
            400: OpenApiResponse(description=f"user_id longer than {MAX_ID_LENGTH} characters"),
            401: OpenApiResponse(description="No credentials, or an unknown or revoked key"),
            403: OpenApiResponse(
                description="A publishable key, a secret key without the admin scope, or a "
                "login that is not staff"
            ),
            503: OpenApiResponse(
                description="Redis did not answer; the erasure is incomplete, send it again"
            ),
        },
    )
    def delete(self, request, user_id: str):
        path = ShopperPathSerializer(data={"user_id": user_id})
        path.is_valid(raise_exception=True)
        try:
            record = erase_shopper(path.validated_data["user_id"], requested_by=requester(request))
        except CONNECTION_ERRORS:
            return error_response(
                503,
                "unavailable",
                "Redis did not answer; the erasure is incomplete, send it again.",
            )
        out = ErasureOutSerializer(
            {"erased": True, "counts": record.counts, "erased_at": record.erased_at}
        )
        return Response(out.data)
