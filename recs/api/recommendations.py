"""GET /api/v1/recommendations: the render path over HTTP, for storefronts that are not Django."""

import logging

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from recs.api.authentication import StorefrontKeyAuthentication
from recs.api.throttling import RenderPathThrottle
from recs.keys import StorefrontKey
from recs.serving import RecommendationContext, recommend
from recs.serving.catalog import cards

logger = logging.getLogger(__name__)


class RecommendationsQuerySerializer(serializers.Serializer):
    placement = serializers.CharField(max_length=64)
    user_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    session_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    product_id = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    cart = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="",
        help_text="Comma-separated SKUs in the cart",
    )  # fmt: skip
    limit = serializers.IntegerField(min_value=1, required=False)
    country = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    device = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    referrer = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate_limit(self, value: int) -> int:
        if value > settings.SERVING_MAX_LIMIT:
            raise serializers.ValidationError(f"must be at most {settings.SERVING_MAX_LIMIT}")
        return value

    def validate_product_id(self, value: str) -> str:
        # Checked against the in-process catalog copy: no database query on the render path.
        if value and value not in cards(None):
            raise serializers.ValidationError(f"unknown product {value!r}")
        return value


class RecommendedItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    score = serializers.FloatField()
    reason = serializers.CharField()
    title = serializers.CharField()
    price = serializers.CharField()
    currency = serializers.CharField()
    image_url = serializers.CharField()
    category_path = serializers.CharField()
    is_new = serializers.BooleanField()
    pinned = serializers.BooleanField()


class RecommendationsOutSerializer(serializers.Serializer):
    placement = serializers.CharField()
    items = RecommendedItemSerializer(many=True)
    tier = serializers.ChoiceField(choices=["anonymous", "content", "collaborative"])
    source = serializers.CharField(help_text="Where the first item came from; 'fallback' when "
                                   "Redis was unreachable")  # fmt: skip
    variant = serializers.CharField()
    model_version = serializers.CharField()
    rec_id = serializers.CharField(help_text="Send it back with impression and click events")
    generated_at = serializers.FloatField()
    age_s = serializers.FloatField()
    fallbacks = serializers.ListField(child=serializers.CharField())
    served_at = serializers.FloatField()


class ReadKeyOrAnonymous(permissions.BasePermission):
    """Anyone may read (throttled per IP); a key that is presented must have the read scope."""

    message = "This storefront key lacks the 'read' scope."

    def has_permission(self, request, view):
        if isinstance(request.auth, StorefrontKey):
            return request.auth.has_scope("read")
        return True


class RecommendationsView(APIView):
    authentication_classes = [StorefrontKeyAuthentication, SessionAuthentication]
    permission_classes = [ReadKeyOrAnonymous]
    throttle_classes = [RenderPathThrottle]

    @extend_schema(
        operation_id="recommendations_list",
        summary="Recommendations for one placement",
        description=(
            "Served from the candidate cache in milliseconds, never from a model. The answer "
            "says which tier served (anonymous, content, collaborative), the source of the list, "
            "the experiment variant and model version, and carries a rec_id to send back with "
            "impression and click events. When Redis is down the answer is still 200, from an "
            "in-process copy of global popularity, with source 'fallback'."
        ),
        parameters=[RecommendationsQuerySerializer],
        responses={
            200: RecommendationsOutSerializer,
            400: OpenApiResponse(description="Unknown placement or product, bad limit"),
            401: OpenApiResponse(description="Unknown or revoked key"),
            403: OpenApiResponse(description="The key lacks the read scope"),
            429: OpenApiResponse(description="Rate limit exceeded"),
        },
    )
    def get(self, request):
        query = RecommendationsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        context = RecommendationContext(
            placement=data["placement"],
            user_id=data["user_id"],
            session_id=data["session_id"],
            product_sku=data["product_id"],
            cart_skus=tuple(sku.strip() for sku in data["cart"].split(",") if sku.strip()),
            category_path=data["category"],
            device=data["device"],
            country=data["country"],
            referrer=data["referrer"],
            limit=data.get("limit"),
        )
        try:
            result = recommend(context)
        except ValueError as error:
            raise serializers.ValidationError({"placement": [str(error)]}) from error
        return Response(result.to_dict())
