"""The catalog and stock API: bulk product upsert, a product by SKU, deactivation, bulk stock.

For server keys with the `catalog` scope (or staff). Batches are validated item by item like
the events API: valid items are stored, each rejected one is listed with its index, SKU and a
reason. Writes go through merch.services, which announce them on commit: a product sold out or
deactivated here is never served once the response is sent.
"""

import io
from typing import Any

from django.db import IntegrityError
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response

from aisle.conf import aisle_settings
from merch.models import Product
from merch.product_input import (
    SKU_MAX_LENGTH,
    SKU_PATTERN,
    ProductInSerializer,
    RejectedItem,
    StockLevelInSerializer,
    validate_products,
    validate_stock_levels,
)
from merch.selectors.catalog import ProductDetail, product_detail
from merch.services.catalog import deactivate_product, update_stock_levels, upsert_products
from recs.api.authentication import requires_secret_scope
from recs.api.base import AisleAPIView
from recs.api.errors import body_size_error, error_response
from recs.api.schema import extend_schema

# The rate limit of server keys. If the trust-model work renames this throttle, change this line.

# --- Documentation-only shapes


class CatalogErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.ListField(
        child=serializers.DictField(),
        help_text="For a batch with nothing valid: each rejected item as {index, sku, reason}.",
    )


class CatalogErrorSerializer(serializers.Serializer):
    """The house error shape."""

    error = CatalogErrorBodySerializer()


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=CatalogErrorSerializer, description=description)


AUTH_ERRORS = {
    401: _error("Missing, unknown or revoked key"),
    403: _error("Not a secret key with the 'catalog' scope, nor a staff login"),
    429: _error("Rate limit of the key exceeded"),
}
BODY_ERRORS = {
    411: _error("No Content-Length"),
    413: _error(
        f"Body larger than CATALOG_MAX_BODY_BYTES ({aisle_settings.CATALOG_MAX_BODY_BYTES}) or more "
        f"than CATALOG_MAX_BATCH ({aisle_settings.CATALOG_MAX_BATCH}) items"
    ),
    415: _error("Not application/json"),
}
SKU_PARAMETER = OpenApiParameter(
    "sku",
    {"type": "string", "minLength": 1, "maxLength": SKU_MAX_LENGTH, "pattern": SKU_PATTERN},
    OpenApiParameter.PATH,
    required=True,
    description="The product's SKU (URL-encoded).",
)


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, help_text="Position in the request's list")
    sku = serializers.CharField(allow_blank=True, help_text="'' when the item had none")
    reason = serializers.CharField()


# --- Products


class ProductBatchInSerializer(serializers.Serializer):
    products = serializers.ListField(
        child=ProductInSerializer(), min_length=1, max_length=aisle_settings.CATALOG_MAX_BATCH
    )


class ProductBatchOutSerializer(serializers.Serializer):
    created = serializers.IntegerField(min_value=0)
    updated = serializers.IntegerField(min_value=0)
    unchanged = serializers.IntegerField(
        min_value=0, help_text="Sent exactly as stored: nothing was written"
    )
    rejected = RejectedItemSerializer(many=True)


class StockOutSerializer(serializers.Serializer):
    on_hand = serializers.IntegerField(min_value=0)
    reserved = serializers.IntegerField(min_value=0)
    available = serializers.IntegerField(min_value=0, help_text="on_hand - reserved, at least 0")


class ProductOutSerializer(serializers.Serializer):
    sku = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    category_path = serializers.ListField(
        child=serializers.CharField(), help_text="Category names from the root"
    )
    brand = serializers.CharField(allow_blank=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    image_url = serializers.CharField(allow_blank=True)
    attributes = serializers.DictField()
    launched_at = serializers.DateTimeField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    stock = StockOutSerializer()

    @staticmethod
    def from_detail(detail: ProductDetail) -> dict:
        return {
            "sku": detail.sku,
            "title": detail.title,
            "description": detail.description,
            "category_path": detail.category_names,
            "brand": detail.brand,
            "price": detail.price,
            "currency": detail.currency,
            "image_url": detail.image_url,
            "attributes": detail.attributes,
            "launched_at": detail.launched_at,
            "active": detail.is_active,
            "created_at": detail.created_at,
            "updated_at": detail.updated_at,
            "stock": {
                "on_hand": detail.on_hand,
                "reserved": detail.reserved,
                "available": detail.available_quantity,
            },
        }


class CatalogAPIView(AisleAPIView):
    """Who may call the catalog API: a secret key with the `catalog` scope, or staff."""

    permission_classes = [requires_secret_scope("catalog")]


def _json_body(request: Request, size: int) -> Any:
    """The parsed JSON body, read here rather than through request.data: Django holds a body
    read that way to DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default, an HTML 400 beyond it),
    below CATALOG_MAX_BODY_BYTES, which the caller has checked against Content-Length."""
    parser = request.negotiator.select_parser(request, request.parsers)
    if parser is None:
        raise UnsupportedMediaType(request.content_type)
    body = request._request.read(size)
    return parser.parse(io.BytesIO(body), request.content_type, request.parser_context)


def _batch(request: Request, key: str, noun: str) -> list | Response:
    """The list under `key` in the JSON body, or the error response saying what is wrong."""
    too_big = body_size_error(request, aisle_settings.CATALOG_MAX_BODY_BYTES)
    if too_big is not None:
        return too_big
    size = int(request.headers["Content-Length"])
    try:
        payload = _json_body(request, size)
    except ParseError as error:
        return error_response(400, "malformed_json", f"The body is not valid JSON: {error.detail}")
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return error_response(400, "invalid_shape", f'Send {{"{key}": [...]}}.')
    if len(items) > aisle_settings.CATALOG_MAX_BATCH:
        return error_response(
            413, "batch_too_large",
            f"{len(items)} {noun} in one batch; send at most {aisle_settings.CATALOG_MAX_BATCH}.",
        )  # fmt: skip
    if not items:
        return error_response(400, "empty_batch", "The batch is empty.")
    return items


def _nothing_valid(noun: str, rejected: list[RejectedItem]) -> Response:
    return error_response(
        400, f"no_valid_{noun}", f"No {noun.rstrip('s')} in the batch is valid.",
        details=[r.as_dict() for r in rejected],
    )  # fmt: skip


class ProductsView(CatalogAPIView):
    @extend_schema(
        operation_id="products_upsert",
        summary="Create or update products by SKU",
        description=(
            f"Up to CATALOG_MAX_BATCH ({aisle_settings.CATALOG_MAX_BATCH}) products. Each is validated "
            "on its own: valid products are created or updated (every field replaced), each "
            "rejected one is listed with its index, SKU and a reason. Idempotent: a product "
            "sent exactly as stored counts as unchanged and is not written. A SKU repeated "
            "within the batch is rejected. New and changed products reach recommendations "
            "without a restart: product cards reload, and similar-item lists are computed from "
            "their text, category, brand and price. A new product has no stock until "
            "POST /api/v1/stock sets it, and is not served before. Authenticate with a secret "
            "key that has the 'catalog' scope (`Authorization: Bearer <key>`)."
        ),
        request=ProductBatchInSerializer,
        responses={
            200: ProductBatchOutSerializer,
            400: _error("Malformed JSON, wrong shape, empty batch, or no valid product"),
            409: _error("Another request created the same products at the same time; retry"),
            **AUTH_ERRORS,
            **BODY_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Two products",
                request_only=True,
                value={
                    "products": [
                        {
                            "sku": "85123A",
                            "title": "White Hanging Heart T-Light Holder",
                            "description": "Heart-shaped holder for tea lights.",
                            "category_path": ["Home", "Candles & Lights"],
                            "brand": "Aisle Home",
                            "price": "2.55",
                            "currency": "GBP",
                            "image_url": "https://cdn.example.com/85123A.jpg",
                            "attributes": {"colour": "white", "material": "metal"},
                            "launched_at": "2024-10-01T09:00:00Z",
                            "active": True,
                        },
                        {
                            "sku": "22423",
                            "title": "Regency Cakestand 3 Tier",
                            "price": "12.75",
                            "category_path": "Kitchen > Baking",
                        },
                    ]
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        items = _batch(request, "products", "products")
        if isinstance(items, Response):
            return items
        records, rejected = validate_products(items)
        if not records:
            return _nothing_valid("products", rejected)
        try:
            result = upsert_products(records)
        except IntegrityError:  # a concurrent request created one of them first: now it exists
            try:
                result = upsert_products(records)
            except IntegrityError:
                return error_response(
                    409, "conflict", "Another request is writing the same products; retry."
                )
        return Response(
            {
                "created": len(result.created),
                "updated": len(result.updated),
                "unchanged": len(result.unchanged),
                "rejected": [r.as_dict() for r in rejected],
            }
        )


class ProductView(CatalogAPIView):
    @extend_schema(
        operation_id="products_retrieve",
        summary="A product as stored, with its stock",
        parameters=[SKU_PARAMETER],
        responses={
            200: ProductOutSerializer,
            404: _error("No product with this SKU"),
            **AUTH_ERRORS,
        },
    )
    def get(self, request: Request, sku: str) -> Response:
        detail = product_detail(sku)
        if detail is None:
            return _not_found(sku)
        return Response(ProductOutSerializer(ProductOutSerializer.from_detail(detail)).data)

    @extend_schema(
        operation_id="products_deactivate",
        summary="Take a product off sale",
        description=(
            "Deactivates the product: it is never recommended once the response is sent. The "
            "product and its history stay; upserting it with `active: true` brings it back. "
            "Idempotent. Returns the product as stored."
        ),
        parameters=[SKU_PARAMETER],
        request=None,
        responses={
            200: ProductOutSerializer,
            404: _error("No product with this SKU"),
            **AUTH_ERRORS,
        },
    )
    def delete(self, request: Request, sku: str) -> Response:
        try:
            deactivate_product(sku)
        except Product.DoesNotExist:
            return _not_found(sku)
        detail = product_detail(sku)
        return Response(ProductOutSerializer(ProductOutSerializer.from_detail(detail)).data)


def _not_found(sku: str) -> Response:
    return error_response(404, "not_found", f"No product with SKU {sku[:64]!r}.")


# --- Stock


class StockBatchInSerializer(serializers.Serializer):
    stock = serializers.ListField(
        child=StockLevelInSerializer(), min_length=1, max_length=aisle_settings.CATALOG_MAX_BATCH
    )


class StockBatchOutSerializer(serializers.Serializer):
    updated = serializers.IntegerField(min_value=0)
    unchanged = serializers.IntegerField(min_value=0)
    rejected = RejectedItemSerializer(many=True)


class StockView(CatalogAPIView):
    @extend_schema(
        operation_id="stock_update",
        summary="Set stock levels of many products",
        description=(
            f"Up to CATALOG_MAX_BATCH ({aisle_settings.CATALOG_MAX_BATCH}) levels. Each is validated on "
            "its own; unknown SKUs and bad quantities are rejected with a reason, the others are "
            "written in one transaction. A product with nothing available (on_hand <= reserved) "
            "is never recommended once the response is sent; one back in stock is served again "
            "(if active). Authenticate with a secret key that has the 'catalog' scope."
        ),
        request=StockBatchInSerializer,
        responses={
            200: StockBatchOutSerializer,
            400: _error("Malformed JSON, wrong shape, empty batch, or no valid level"),
            **AUTH_ERRORS,
            **BODY_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Sold out, and restocked",
                request_only=True,
                value={
                    "stock": [
                        {"sku": "85123A", "on_hand": 0, "reserved": 0},
                        {"sku": "22423", "on_hand": 40},
                    ]
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        items = _batch(request, "stock", "levels")
        if isinstance(items, Response):
            return items
        levels, rejected = validate_stock_levels(items)
        result = update_stock_levels(level for _, level in levels)
        unknown = set(result.unknown)
        rejected += [
            RejectedItem(index, level.sku, f"sku: unknown product {level.sku!r}")
            for index, level in levels
            if level.sku in unknown
        ]
        rejected.sort(key=lambda r: r.index)
        if not result.updated and not result.unchanged:
            return _nothing_valid("levels", rejected)
        return Response(
            {
                "updated": len(result.updated),
                "unchanged": len(result.unchanged),
                "rejected": [r.as_dict() for r in rejected],
            }
        )
