"""A product (or stock level) as the catalog API and import_catalog receive it, validated.

The API documents its request schema from ProductInSerializer, so every limit here is also a
constraint in the OpenAPI schema. A product that fails is rejected with a plain sentence naming
the field ("price: must be a decimal from 0 to 99999999.99 with at most 2 decimals"), so that a
feed's other products still land.
"""

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.validators import RegexValidator, URLValidator
from django.utils.text import slugify
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aisle.conf import aisle_settings
from merch.services.catalog import ProductRecord, StockLevel

SKU_MAX_LENGTH = 32  # Product.sku
TITLE_MAX_LENGTH = 255  # Product.title
DESCRIPTION_MAX_LENGTH = 10_000
BRAND_MAX_LENGTH = 120  # Product.brand
IMAGE_URL_MAX_LENGTH = 500  # Product.image_url
PAGE_URL_MAX_LENGTH = 500  # Product.url
_HTTP_URL = re.compile(r"^https?://[^\s/]", re.IGNORECASE)


def page_url_problem(value: str) -> str:
    """Why `value` cannot be a product's page URL ("" when it can): a path on the shop or an
    http(s) URL, nothing a link could run (javascript:) or leave ambiguous (//host, spaces)."""
    if len(value) > PAGE_URL_MAX_LENGTH:
        return f"has at most {PAGE_URL_MAX_LENGTH} characters"
    is_path = value.startswith("/") and not value.startswith("//")
    if value and (any(c.isspace() for c in value) or not (is_path or _HTTP_URL.match(value))):
        return "must be a path starting with / or an http or https URL"
    return ""


# Category.name and Category.slug hold 120 characters and Category.path 500: four levels of
# 120 characters always fit the path.
CATEGORY_MAX_LEVELS = 4
CATEGORY_NAME_MAX_LENGTH = 120
CATEGORY_PATH_MAX_LENGTH = 500
CATEGORY_SEPARATOR = " > "
# Attributes feed the content learner's text and the product page; flat and bounded, so that
# one product cannot bloat every worker's copy of the catalog.
ATTRIBUTES_MAX_KEYS = 30
ATTRIBUTE_KEY_MAX_LENGTH = 64
ATTRIBUTE_TEXT_MAX_LENGTH = 500
ATTRIBUTE_LIST_MAX_ITEMS = 20
PRICE_MAX_DIGITS = 10  # Product.price
PRICE_DECIMAL_PLACES = 2

SKU_PATTERN = r"^[^\s/]+$"
PRICE_PATTERN = r"^\d{1,8}(\.\d{1,2})?$"
PRICE_REASON = "must be a decimal from 0 to 99999999.99 with at most 2 decimals"

T = TypeVar("T")

_attribute_scalar = [
    {"type": "string", "maxLength": ATTRIBUTE_TEXT_MAX_LENGTH},
    {"type": "number"},
    {"type": "boolean"},
]


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "array",
                "maxItems": CATEGORY_MAX_LEVELS,
                "items": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": CATEGORY_NAME_MAX_LENGTH,
                    "pattern": r"\S",
                },
            },
            {
                "type": "string",
                "maxLength": CATEGORY_MAX_LEVELS * (CATEGORY_NAME_MAX_LENGTH + 3),
            },
        ],
        "nullable": True,
        "description": 'Category names from the root, e.g. ["Home", "Candles"]; or the same '
        f"as one string joined by '{CATEGORY_SEPARATOR}' (\"Home > Candles\"). At most "
        f"{CATEGORY_MAX_LEVELS} levels of at most {CATEGORY_NAME_MAX_LENGTH} characters. "
        "Empty or null: no category. Missing categories are created.",
        "example": ["Home", "Candles"],
    }
)
class CategoryPathField(serializers.Field):
    """A category path as a list of names, or one string with ' > ' between the names."""

    default_error_messages = {
        "invalid": "must be a list of category names or one string like 'Home > Candles'",
    }

    def to_internal_value(self, data: Any) -> tuple[str, ...]:
        if data is None:
            return ()
        if isinstance(data, str):
            names = [name.strip() for name in data.split(">")]
            names = [name for name in names if name]
        elif isinstance(data, list) and all(isinstance(name, str) for name in data):
            if any(len(name) > CATEGORY_NAME_MAX_LENGTH for name in data):
                raise serializers.ValidationError(
                    f"each name has at most {CATEGORY_NAME_MAX_LENGTH} characters"
                )
            names = [name.strip() for name in data]
            if not all(names):
                raise serializers.ValidationError("a category name cannot be blank")
        else:
            self.fail("invalid")
        if len(names) > CATEGORY_MAX_LEVELS:
            raise serializers.ValidationError(f"has at most {CATEGORY_MAX_LEVELS} levels")
        slugs = [slugify(name) or "unnamed" for name in names]
        if any(len(name) > CATEGORY_NAME_MAX_LENGTH for name in names) or any(
            len(slug) > CATEGORY_NAME_MAX_LENGTH for slug in slugs
        ):
            raise serializers.ValidationError(
                f"each name has at most {CATEGORY_NAME_MAX_LENGTH} characters"
            )
        if len("/".join(slugs)) > CATEGORY_PATH_MAX_LENGTH:
            raise serializers.ValidationError("is too long")
        return tuple(names)

    def to_representation(self, value: Iterable[str]) -> list[str]:
        return list(value)


def _attribute_value_is_valid(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= ATTRIBUTE_TEXT_MAX_LENGTH
    return False


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "maxProperties": ATTRIBUTES_MAX_KEYS,
        "additionalProperties": {
            "oneOf": [
                *_attribute_scalar,
                {
                    "type": "array",
                    "maxItems": ATTRIBUTE_LIST_MAX_ITEMS,
                    "items": {"oneOf": _attribute_scalar},
                },
            ]
        },
        "description": f'Flat facts about the product, e.g. {{"colour": "red", "sizes": '
        f'["S", "M"]}}: at most {ATTRIBUTES_MAX_KEYS} keys of 1 to '
        f"{ATTRIBUTE_KEY_MAX_LENGTH} characters; each value a string (at most "
        f"{ATTRIBUTE_TEXT_MAX_LENGTH} characters), a number, a boolean, or a list of at most "
        f"{ATTRIBUTE_LIST_MAX_ITEMS} of those. Words in the values count towards similar items.",
    }
)
class AttributesField(serializers.Field):
    """A flat JSON object of bounded size."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be a JSON object")
        if len(data) > ATTRIBUTES_MAX_KEYS:
            raise serializers.ValidationError(f"has at most {ATTRIBUTES_MAX_KEYS} keys")
        for key, value in data.items():
            if not 1 <= len(key) <= ATTRIBUTE_KEY_MAX_LENGTH:
                raise serializers.ValidationError(
                    f"keys have 1 to {ATTRIBUTE_KEY_MAX_LENGTH} characters"
                )
            if isinstance(value, list):
                if len(value) > ATTRIBUTE_LIST_MAX_ITEMS or not all(
                    _attribute_value_is_valid(item) for item in value
                ):
                    raise serializers.ValidationError(
                        f"{key!r} must be a list of at most {ATTRIBUTE_LIST_MAX_ITEMS} strings, "
                        "numbers or booleans"
                    )
            elif not _attribute_value_is_valid(value):
                raise serializers.ValidationError(
                    f"{key!r} must be a string (at most {ATTRIBUTE_TEXT_MAX_LENGTH} characters), "
                    "a finite number, a boolean or a list of those"
                )
        return data

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


@extend_schema_field(
    {
        "type": "string",
        "pattern": PRICE_PATTERN,
        "description": "Decimal as a string, 0 to 99999999.99, at most 2 decimals (a JSON number "
        "is accepted too).",
        "example": "2.55",
    }
)
class PriceField(serializers.DecimalField):
    """A price; one plain sentence for every way it can be wrong."""

    def __init__(self, **kwargs: Any) -> None:
        reason = {
            key: PRICE_REASON
            for key in (
                "invalid", "max_value", "min_value", "max_digits", "max_decimal_places",
                "max_whole_digits", "max_string_length", "null",
            )
        }  # fmt: skip
        super().__init__(
            max_digits=PRICE_MAX_DIGITS,
            decimal_places=PRICE_DECIMAL_PLACES,
            min_value=0,
            error_messages=reason,
            **kwargs,
        )

    def to_internal_value(self, data: Any):
        if isinstance(data, bool):  # JSON true is not a price, though Python calls it 1
            self.fail("invalid")
        return super().to_internal_value(data)


class ProductInSerializer(serializers.Serializer):
    """One product to create or update by SKU. Every field is replaced; keys not listed here
    are ignored."""

    sku = serializers.CharField(
        max_length=SKU_MAX_LENGTH,
        trim_whitespace=False,
        validators=[RegexValidator(SKU_PATTERN, "may not contain spaces or slashes")],
        help_text="Your product code; the product's identity.",
    )
    title = serializers.CharField(
        max_length=TITLE_MAX_LENGTH,
        trim_whitespace=False,
        validators=[RegexValidator(r"\S", "must not be blank")],
    )
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True, allow_null=True,
        trim_whitespace=False, default="",
    )  # fmt: skip
    category_path = CategoryPathField(required=False, allow_null=True, default=())
    brand = serializers.CharField(
        max_length=BRAND_MAX_LENGTH, required=False, allow_blank=True, allow_null=True,
        trim_whitespace=False, default="",
    )  # fmt: skip
    price = PriceField()
    currency = serializers.CharField(
        min_length=3,
        max_length=3,
        required=False,
        trim_whitespace=False,
        validators=[RegexValidator(r"^[A-Z]{3}$", "must be a 3-letter ISO 4217 code like GBP")],
        help_text="ISO 4217, upper case; default the shop's DEFAULT_CURRENCY.",
    )
    image_url = serializers.CharField(
        max_length=IMAGE_URL_MAX_LENGTH, required=False, allow_blank=True, allow_null=True,
        trim_whitespace=False, default="",
        validators=[
            RegexValidator(r"^$|^https?://", "must be an http or https URL"),
            URLValidator(schemes=["http", "https"], message="must be an http or https URL"),
        ],
    )  # fmt: skip
    attributes = AttributesField(required=False, allow_null=True, default=dict)
    launched_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="ISO 8601; naive means UTC. Missing or null keeps the stored launch time "
        "(now, for a new product).",
    )
    active = serializers.BooleanField(required=False, default=True)
    url = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False, default=None,
        help_text="The product's page on the shop, where recommendations link it: a path "
        "(/shop/lantern-12/) or an http(s) URL. Missing or null keeps the stored one; "
        "empty means the page named by RECS_PRODUCT_URL_NAME.",
    )  # fmt: skip

    def validate_url(self, value: str | None) -> str | None:
        if value and (problem := page_url_problem(value)):
            raise serializers.ValidationError(problem)
        return value

    def validate_sku(self, value: str) -> str:
        # `$` in the pattern lets one trailing newline through; no whitespace anywhere.
        if any(character.isspace() for character in value):
            raise serializers.ValidationError("may not contain spaces or slashes")
        return value

    @staticmethod
    def to_record(data: dict[str, Any]) -> ProductRecord:
        return ProductRecord(
            sku=data["sku"],
            title=data["title"],
            price=data["price"],
            category_path=tuple(data.get("category_path") or ()),
            description=data.get("description") or "",
            brand=data.get("brand") or "",
            currency=data.get("currency") or aisle_settings.DEFAULT_CURRENCY,
            attributes=data.get("attributes") or {},
            image_url=data.get("image_url") or "",
            launched_at=data.get("launched_at"),
            is_active=data.get("active", True),
            url=data.get("url"),
        )


@dataclass(frozen=True)
class RejectedItem:
    """An item of a batch that was not stored, and why, in one sentence."""

    index: int
    sku: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "sku": self.sku, "reason": self.reason}


class InvalidProduct(ValueError):
    """An item of a batch that cannot be stored; the message is the reason."""


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [message for nested in value.values() for message in _messages(nested)]
    if isinstance(value, list):
        return [message for nested in value for message in _messages(nested)]
    return [str(value)]


def reason_from_errors(errors: Any) -> str:
    """A plain sentence from a serializer's errors: "price: ...; sku: ..."."""
    if not isinstance(errors, dict):
        return "; ".join(_messages(errors))
    parts = []
    for field, messages in errors.items():
        text = " ".join(dict.fromkeys(_messages(messages)))
        parts.append(text if field in ("non_field_errors", "__all__") else f"{field}: {text}")
    return "; ".join(parts)


def parse_product(data: Any, serializer: ProductInSerializer | None = None) -> ProductRecord:
    """The ProductRecord a product dict describes; raises InvalidProduct with the reason.

    Pass one serializer to reuse across a batch: its fields are then built once."""
    if not isinstance(data, dict):
        raise InvalidProduct("is not a JSON object")
    serializer = serializer or ProductInSerializer()
    try:
        validated = serializer.run_validation(data)
    except serializers.ValidationError as error:
        raise InvalidProduct(reason_from_errors(error.detail)) from None
    return ProductInSerializer.to_record(validated)


def _validate_batch(
    items: Sequence[Any], parse: Callable[[Any], T], sku_of: Callable[[T], str], seen: set[str]
) -> tuple[list[tuple[int, T]], list[RejectedItem]]:
    """Each item parsed on its own, with its index; a SKU seen before is rejected: which of two
    versions should win would otherwise depend on the order of writes."""
    valid: list[tuple[int, T]] = []
    rejected: list[RejectedItem] = []
    for index, item in enumerate(items):
        sku = item.get("sku") if isinstance(item, dict) else None
        sku = sku[: SKU_MAX_LENGTH * 2] if isinstance(sku, str) else ""
        try:
            value = parse(item)
        except InvalidProduct as error:
            rejected.append(RejectedItem(index, sku, str(error)))
            continue
        if sku_of(value) in seen:
            rejected.append(RejectedItem(index, sku, "sku: repeats an earlier item with this SKU"))
            continue
        seen.add(sku_of(value))
        valid.append((index, value))
    return valid, rejected


def validate_products(
    items: Sequence[Any], seen: set[str] | None = None
) -> tuple[list[ProductRecord], list[RejectedItem]]:
    """Validate a batch item by item: the valid records, and each rejected one with its index.

    A SKU that repeats an earlier one, in this batch or in `seen` (which is updated: an importer
    passes the same set for every batch of a file), is rejected."""
    serializer = ProductInSerializer()
    valid, rejected = _validate_batch(
        items,
        lambda item: parse_product(item, serializer),
        lambda record: record.sku,
        set() if seen is None else seen,
    )
    return [record for _, record in valid], rejected


STOCK_QUANTITY_MAX = 2_147_483_647  # Stock.on_hand / reserved: a positive 32-bit integer


class StockLevelInSerializer(serializers.Serializer):
    """One product's stock as the catalog API receives it."""

    sku = serializers.CharField(
        max_length=SKU_MAX_LENGTH,
        trim_whitespace=False,
        validators=[RegexValidator(SKU_PATTERN, "may not contain spaces or slashes")],
    )
    on_hand = serializers.IntegerField(min_value=0, max_value=STOCK_QUANTITY_MAX)
    reserved = serializers.IntegerField(
        min_value=0,
        max_value=STOCK_QUANTITY_MAX,
        required=False,
        help_text="Held by open carts and orders; missing keeps the stored value (0 if none).",
    )


def validate_stock_levels(
    items: Sequence[Any],
) -> tuple[list[tuple[int, StockLevel]], list[RejectedItem]]:
    """Validate stock levels item by item: each valid level with its index, and the rejected.

    Whether the SKU exists is the writer's to say (update_stock_levels reports unknown ones)."""
    serializer = StockLevelInSerializer()

    def parse(item: Any) -> StockLevel:
        if not isinstance(item, dict):
            raise InvalidProduct("is not a JSON object")
        try:
            data = serializer.run_validation(item)
        except serializers.ValidationError as error:
            raise InvalidProduct(reason_from_errors(error.detail)) from None
        return StockLevel(data["sku"], data["on_hand"], data.get("reserved"))

    return _validate_batch(items, parse, lambda level: level.sku, set())
