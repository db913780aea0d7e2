"""GET /api/v1/recommendations: the render path over HTTP, for storefronts that are not Django."""

import logging

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response

from aisle.conf import aisle_settings
from merch.selectors.catalog import existing_skus
from recs import redis_keys
from recs.api.authentication import HeldKeyAuthentication, ReadableByAnyone, resolve_shopper
from recs.api.base import AisleAPIView
from recs.api.schema import extend_schema
from recs.api.throttling import RenderPathThrottle, rate_limit_of
from recs.api_keys import ApiKey, confirm_held_key
from recs.serving.catalog import cards
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext, Recommendations, RideAlong
from recs.shopper_tokens import HEADER as SHOPPER_TOKEN_HEADER

logger = logging.getLogger(__name__)


class RecommendationsQuerySerializer(serializers.Serializer):
    placement = serializers.CharField(
        max_length=64,
        help_text="A placement key (merch Placement). The enum lists the placements defined when "
        "this schema was generated; merchandisers add, rename and remove placements in the admin "
        "at any time, so read the set from this schema rather than hard-coding it. An unknown "
        "key is a 400 that lists the current ones.",
    )
    user_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="Used only when the caller proves it: a secret key with 'read', the "
        "shopper token of this user, or their own session. Ignored otherwise.",
    )  # fmt: skip
    session_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="Used only when the caller proves it, as user_id.",
    )  # fmt: skip
    product_id = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    cart = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="",
        help_text="Comma-separated SKUs in the cart",
    )  # fmt: skip
    limit = serializers.IntegerField(
        min_value=1, max_value=aisle_settings.SERVING_MAX_LIMIT, required=False,
        help_text="How many items; default the placement's size",
    )  # fmt: skip
    country = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    device = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    referrer = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def to_internal_value(self, data):
        # An empty `limit=` would count as left out (DRF's form rule); the schema says integer.
        if data.get("limit") == "":
            raise serializers.ValidationError(
                {"limit": ["A valid integer is required; leave limit out for the default."]}
            )
        return super().to_internal_value(data)

    def validate_product_id(self, value: str) -> str:
        # Checked against the in-process catalog copy: no database query on the render path,
        # but for a SKU the copy does not know yet (a product added since it was loaded).
        if value and value not in cards(None) and not existing_skus([value]):
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
    url = serializers.CharField(help_text="The shop's page of the product; empty when unknown.")


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


class RecommendationsView(AisleAPIView):
    authentication_classes = [HeldKeyAuthentication, SessionAuthentication]
    permission_classes = [ReadableByAnyone]
    throttle_classes = [RenderPathThrottle]

    @extend_schema(
        operation_id="recommendations_list",
        summary="Recommendations for one placement",
        description=(
            "Served from the candidate cache in milliseconds, never from a model. The answer "
            "says which tier served (anonymous, content, collaborative), the source of the list, "
            "the experiment variant and model version, and carries a rec_id to send back with "
            "impression and click events. When Redis is down the answer is still 200, from an "
            "in-process copy of global popularity, with source 'fallback'. Personal lists "
            "need proof of the shopper: a secret key with the 'read' scope (any user_id), "
            f"the shopper's token in `{SHOPPER_TOKEN_HEADER}`, or the shopper's own session "
            "cookie. Without proof, user_id and session_id are ignored and the answer uses "
            "only the page's context (placement, product, cart, category, country, device)."
        ),
        parameters=[RecommendationsQuerySerializer],
        # Anyone may read (the empty requirement); what a caller proves decides whose list.
        auth=[{"apiKey": []}, {"shopperToken": []}, {"cookieAuth": []}, {}],
        responses={
            200: RecommendationsOutSerializer,
            400: OpenApiResponse(description="Unknown placement or product, bad limit"),
            401: OpenApiResponse(description="Unknown or revoked key; invalid shopper token"),
            403: OpenApiResponse(
                description="A publishable key, or a secret key without the read scope; ids "
                "other than the shopper token's own"
            ),
            429: OpenApiResponse(description="Rate limit exceeded"),
        },
    )
    def get(self, request):
        rate_limit = rate_limit_of(request)
        ride_along = RideAlong(
            counter=rate_limit.counter if rate_limit else None,
            read_keys=(redis_keys.API_KEYS_VERSION,) if isinstance(request.auth, ApiKey) else (),
        )
        try:
            result = self.recommendations(request, ride_along)
            result = self.confirmed(request, ride_along, result)
        finally:
            if rate_limit is not None:
                rate_limit.settle()  # over the limit: 429, whatever the answer was
        return Response(result.to_dict())

    def confirmed(self, request, ride_along: RideAlong, result: Recommendations) -> Recommendations:
        """The answer, once the key it was computed for is confirmed against the keys' version
        read in the same round trip: a key revoked since is refused (401); a key whose scopes
        were edited is checked again and the answer computed under its scopes now."""
        key = request.auth
        if not isinstance(key, ApiKey):
            return result
        # Redis answered: the version (no key yet: "0"); it did not: None, and the DB decides.
        version = (
            ride_along.values[redis_keys.API_KEYS_VERSION] or b"0"
            if redis_keys.API_KEYS_VERSION in ride_along.values
            else None
        )
        current = confirm_held_key(key, version)
        if current is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        if current.scopes == key.scopes:
            return result
        request.auth = current
        self.check_permissions(request)
        return self.recommendations(request, None)

    def recommendations(self, request, ride_along: RideAlong | None) -> Recommendations:
        query = RecommendationsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        shopper = resolve_shopper(request, user_id=data["user_id"], session_id=data["session_id"])
        context = RecommendationContext(
            placement=data["placement"],
            user_id=shopper.user_id,
            session_id=shopper.session_id,
            product_sku=data["product_id"],
            cart_skus=tuple(sku.strip() for sku in data["cart"].split(",") if sku.strip()),
            category_path=data["category"],
            device=data["device"],
            country=data["country"],
            referrer=data["referrer"],
            limit=data.get("limit"),
        )
        try:
            return recommend(context, ride_along)
        except ValueError as error:
            raise serializers.ValidationError({"placement": [str(error)]}) from error
