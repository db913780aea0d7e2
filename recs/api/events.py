"""POST /api/v1/events: validate a batch item by item, queue the valid ones, say why others fail."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, ParseError
from rest_framework.response import Response

from aisle.conf import aisle_settings
from merch.selectors.catalog import existing_skus
from recs.api.authentication import (
    CanSendEvents,
    acts_for_anyone,
    shopper_token_claims,
)
from recs.api.base import AisleAPIView
from recs.api.errors import body_size_error, error_response
from recs.api.schema import extend_schema
from recs.events.records import EventRecord
from recs.events.selectors import stored_event_ids
from recs.events.tasks import QueueUnavailable, enqueue_events
from recs.models import EventType
from recs.shopper_tokens import HEADER as SHOPPER_TOKEN_HEADER
from recs.shopper_tokens import ShopperClaims

PRODUCT_EVENT_TYPES = {t.value for t in EventType} - {EventType.SEARCH.value}


class EventContextSerializer(serializers.Serializer):
    """Where the event happened. Keys not listed here are dropped."""

    device = serializers.CharField(max_length=32, required=False, allow_blank=True)
    country = serializers.CharField(max_length=64, required=False, allow_blank=True)
    referrer = serializers.CharField(max_length=500, required=False, allow_blank=True)
    placement = serializers.CharField(max_length=64, required=False, allow_blank=True)
    rec_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    dwell_ms = serializers.IntegerField(min_value=0, required=False)
    position = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    query = serializers.CharField(max_length=200, required=False, allow_blank=True)


class EventInSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=64)
    type = serializers.ChoiceField(choices=EventType.values)
    user_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    session_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    product_id = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    quantity = serializers.IntegerField(min_value=1, max_value=10000, required=False)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False)
    order_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    query = serializers.CharField(max_length=200, required=False, allow_blank=True)
    ts = serializers.DateTimeField(
        required=False, help_text="ISO 8601; naive means UTC; default now"
    )
    context = EventContextSerializer(required=False)

    def validate_ts(self, value):
        now = timezone.now()
        if value > now + timedelta(seconds=aisle_settings.EVENT_MAX_FUTURE_SKEW_S):
            raise serializers.ValidationError(
                f"is more than {aisle_settings.EVENT_MAX_FUTURE_SKEW_S} s in the future"
            )
        if value < now - timedelta(days=aisle_settings.EVENT_MAX_AGE_DAYS):
            raise serializers.ValidationError(
                f"is more than {aisle_settings.EVENT_MAX_AGE_DAYS} days in the past"
            )
        return value

    def validate(self, data):
        if not data.get("user_id") and not data.get("session_id"):
            raise serializers.ValidationError("needs a user_id or a session_id")
        if data["type"] in PRODUCT_EVENT_TYPES and not data.get("product_id"):
            raise serializers.ValidationError(f"a {data['type']} event needs a product_id")
        if data["type"] == EventType.PURCHASE and data.get("price") is None:
            raise serializers.ValidationError("a purchase event needs a price")
        return data

    @staticmethod
    def to_record(data: dict) -> EventRecord:
        context = dict(data.get("context", {}))
        if data.get("query"):
            context["query"] = data["query"]
        quantity = data.get("quantity")
        if quantity is None and data["type"] in (EventType.PURCHASE, EventType.ADD_TO_CART):
            quantity = 1
        return EventRecord(
            event_id=data["event_id"],
            event_type=data["type"],
            occurred_at=data.get("ts") or timezone.now(),
            user_id=data["user_id"],
            session_id=data["session_id"],
            product_sku=data["product_id"],
            quantity=quantity,
            price=data.get("price"),
            order_id=data["order_id"],
            country=context.get("country", ""),
            device=context.get("device", ""),
            context=context,
        )


class EventBatchInSerializer(serializers.Serializer):
    """The documented request shape (a bare JSON list of events is accepted too)."""

    events = EventInSerializer(many=True)


class RejectedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()


class DuplicateEventSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField()


class EventBatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events queued by this request")
    duplicates = DuplicateEventSerializer(
        many=True, help_text="Events whose event_id is already in the log: not queued again"
    )
    rejected = RejectedEventSerializer(many=True)
    batch_id = serializers.CharField(allow_null=True)


def _reason(errors) -> str:
    """A plain sentence from a serializer's nested errors."""
    parts = []
    for field, messages in errors.items():
        if isinstance(messages, dict):
            parts += [f"context.{k}: {' '.join(map(str, v))}" for k, v in messages.items()]
        elif field == "non_field_errors":
            parts += [str(m) for m in messages]
        else:
            parts.append(f"{field}: {' '.join(str(m) for m in messages)}")
    return "; ".join(parts)


class EventsView(AisleAPIView):
    permission_classes = [CanSendEvents]
    throttle_rate_setting = "EVENTS_THROTTLE_RATE"

    @extend_schema(
        operation_id="events_create",
        summary="Send a batch of shopper events",
        description=(
            "Up to EVENTS_MAX_BATCH (500) events. Each is validated on its own: valid events are "
            "queued durably and never lost from then on; each rejected one is listed with its "
            "index and a reason; an event whose event_id is already in the log is listed under "
            "`duplicates` and not queued again. Authenticate with a secret key that has the "
            "'write' scope (events of any shopper), or with a publishable key plus the shopper "
            f"token of the page's shopper in `{SHOPPER_TOKEN_HEADER}`: the events then belong "
            "to that token's user and session, which they may omit."
        ),
        request=EventBatchInSerializer,
        auth=[{"apiKey": []}, {"apiKey": [], "shopperToken": []}, {"cookieAuth": []}],
        responses={
            202: EventBatchOutSerializer,
            400: OpenApiResponse(description="Malformed JSON, wrong shape, or no valid event"),
            200: OpenApiResponse(
                EventBatchOutSerializer, description="Every valid event was already in the log"
            ),
            401: OpenApiResponse(
                description="Missing, unknown or revoked key; a publishable key without a "
                "valid shopper token"
            ),
            403: OpenApiResponse(description="The key lacks the write scope"),
            411: OpenApiResponse(description="No Content-Length"),
            413: OpenApiResponse(description="Body or batch too large"),
            415: OpenApiResponse(description="Not application/json"),
            429: OpenApiResponse(description="Rate limit of the key or address exceeded"),
            503: OpenApiResponse(description="The queue is unavailable; retry later"),
        },
        examples=[
            OpenApiExample(
                "A view and a purchase",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "e-1",
                            "type": "view",
                            "session_id": "s-42",
                            "product_id": "85123A",
                            "context": {
                                "device": "mobile",
                                "country": "Germany",
                                "placement": "home",
                            },
                        },
                        {
                            "event_id": "e-2",
                            "type": "purchase",
                            "user_id": "17850",
                            "product_id": "85123A",
                            "quantity": 2,
                            "price": "2.55",
                            "order_id": "o-9",
                        },
                    ]
                },
            ),
        ],
    )
    def post(self, request):
        too_big = body_size_error(request, aisle_settings.EVENTS_MAX_BODY_BYTES)
        if too_big is not None:
            return too_big
        try:
            payload = request.data
        except ParseError as error:
            return error_response(
                400, "malformed_json", f"The body is not valid JSON: {error.detail}"
            )
        items = payload.get("events") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            return error_response(
                400, "invalid_shape", 'Send {"events": [...]} or a JSON list of events.'
            )
        if len(items) > aisle_settings.EVENTS_MAX_BATCH:
            return error_response(
                413, "batch_too_large",
                f"{len(items)} events in one batch; send at most {aisle_settings.EVENTS_MAX_BATCH}.",
            )  # fmt: skip
        shopper = self._shopper(request)
        indexed, rejected = self._validate(items, shopper)
        if not indexed:
            return error_response(
                400, "no_valid_events",
                "No event in the batch is valid." if items else "The batch is empty.",
                details=rejected,
            )  # fmt: skip
        stored = stored_event_ids([record.event_id for _, record in indexed])
        duplicates = [
            {"index": index, "event_id": record.event_id}
            for index, record in indexed
            if record.event_id in stored
        ]
        accepted = [record for _, record in indexed if record.event_id not in stored]
        batch_id = None
        if accepted:
            try:
                batch_id = enqueue_events(accepted)
            except QueueUnavailable:
                response = error_response(
                    503, "queue_unavailable",
                    "The event queue is unavailable; nothing was accepted.",
                )  # fmt: skip
                response["Retry-After"] = "5"
                return response
        return Response(
            {
                "accepted": len(accepted),
                "duplicates": duplicates,
                "rejected": rejected,
                "batch_id": batch_id,
            },
            status=status.HTTP_202_ACCEPTED if accepted else status.HTTP_200_OK,
        )

    @staticmethod
    def _shopper(request) -> ShopperClaims | None:
        """None for callers that may name any shopper (secret keys, staff); else the shopper
        the publishable key's token names (401 without a valid token)."""
        if acts_for_anyone(request):
            return None
        claims = shopper_token_claims(request)
        if claims is None:
            raise NotAuthenticated(
                "A publishable key sends events only with the page's shopper token in the "
                f"{SHOPPER_TOKEN_HEADER} header; server-side senders use a secret key."
            )
        return claims

    @staticmethod
    def _validate(
        items: list, shopper: ShopperClaims | None
    ) -> tuple[list[tuple[int, EventRecord]], list[dict]]:
        """(index, record) of the valid events and the reasons of the others. With a
        `shopper`, events belong to that shopper: missing ids are filled in, others refused."""
        records: list[tuple[int, EventRecord]] = []
        rejected: list[dict] = []
        seen: set[str] = set()
        # One serializer for the whole batch, as DRF's ListSerializer does: its fields are built
        # once instead of once per event (that copy was two thirds of the validation time).
        serializer = EventInSerializer()
        for index, item in enumerate(items):
            event_id = str(item.get("event_id", "")) if isinstance(item, dict) else ""
            if not isinstance(item, dict):
                rejected.append({"index": index, "event_id": "", "reason": "is not a JSON object"})
                continue
            if shopper is not None:
                item, foreign = _as_shoppers_event(item, shopper)
                if foreign:
                    rejected.append({"index": index, "event_id": event_id, "reason": foreign})
                    continue
            try:
                data = serializer.run_validation(item)
            except serializers.ValidationError as error:
                detail = error.detail
                if not isinstance(detail, dict):
                    detail = {"non_field_errors": detail}
                rejected.append({"index": index, "event_id": event_id, "reason": _reason(detail)})
                continue
            if event_id in seen:
                rejected.append({"index": index, "event_id": event_id,
                                 "reason": "event_id repeats an earlier event in this batch"})  # fmt: skip
                continue
            seen.add(event_id)
            records.append((index, EventInSerializer.to_record(data)))
        known = existing_skus({r.product_sku for _, r in records if r.product_sku})
        accepted = []
        for index, record in records:
            if record.product_sku and record.product_sku not in known:
                rejected.append({"index": index, "event_id": record.event_id,
                                 "reason": f"product_id: unknown product {record.product_sku!r}"})  # fmt: skip
            else:
                accepted.append((index, record))
        rejected.sort(key=lambda item: item["index"])
        return accepted, rejected


def _as_shoppers_event(item: dict, shopper: ShopperClaims) -> tuple[dict, str]:
    """The event with the token's ids filled in, and the reason when it names someone else."""
    item = dict(item)
    for field, own in (("user_id", shopper.user_id), ("session_id", shopper.session_id)):
        named = item.get(field)
        if named not in (None, "") and named != own:
            return item, (
                f"{field}: the shopper token speaks for another shopper; with a publishable "
                f"key, events carry the token's own {field} or none"
            )
        item[field] = own
    return item, ""
