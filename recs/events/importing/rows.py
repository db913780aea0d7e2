"""One row of a history file as an EventRecord, or the reasons it is rejected.

A row is validated with the live events API's rules (recs/api/events.py), except two that do
not fit history: there is no maximum age, and `ts` is required (an import has no "now" to
default to). A row without an event_id gets one derived from its content, so that importing the
same file again, or an export that overlaps it, stores each event once.
"""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aisle.conf import aisle_settings
from recs.events.records import EventRecord
from recs.models import EventType

DERIVED_ID_PREFIX = "imp-"

# The fields a row can carry (the live API's names; country, device and the rest of the API's
# context keys are flat here), with the API's limits.
TEXT_LIMITS = {
    "event_id": 64, "user_id": 64, "session_id": 64, "product_id": 32, "order_id": 64,
    "country": 64, "device": 32, "referrer": 500, "placement": 64, "rec_id": 64, "query": 200,
}  # fmt: skip
INTEGER_LIMITS = {"quantity": (1, 10000), "dwell_ms": (0, None), "position": (1, 1000)}
FIELDS = ("type", "ts", "price", *TEXT_LIMITS, *INTEGER_LIMITS)
CONTEXT_KEYS = (
    "country",
    "device",
    "referrer",
    "placement",
    "rec_id",
    "dwell_ms",
    "position",
    "query",
)
REQUIRED_FIELDS = ("type", "ts")

EVENT_TYPES = frozenset(EventType.values)
PRODUCT_EVENT_TYPES = EVENT_TYPES - {EventType.SEARCH.value}
QUANTITY_DEFAULT_TYPES = frozenset({EventType.PURCHASE.value, EventType.ADD_TO_CART.value})
PRICE_MAX_DIGITS, PRICE_DECIMAL_PLACES = 10, 2
CENT = Decimal("0.01")
# Epoch values this large are milliseconds: as seconds they would be after the year 5000.
EPOCH_MS_FROM = 1e11
EPOCH = re.compile(r"^-?\d+(\.\d*)?$")
TRAILING_ZERO_DECIMALS = re.compile(r"\.0*\s*$")


class InvalidRow(Exception):
    """A value (args[0] the message) or a row (args[0] [(field, message)]) that is not valid."""


def encodable(text: str) -> bool:
    """Whether the text is UTF-8: undecodable bytes were read as surrogates (see readers)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, limit: int) -> str:
    """As DRF's CharField: strings and numbers, whitespace trimmed, no NUL, at most `limit`."""
    if type(value) is not str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRow("Not a valid string.")
        value = str(value)
    text = value.strip()
    if len(text) > limit:
        raise InvalidRow(f"Ensure this field has no more than {limit} characters.")
    if "\x00" in text:
        raise InvalidRow("Null characters are not allowed.")
    if not encodable(text):
        raise InvalidRow("is not valid UTF-8.")
    return text


def _integer(value: Any, low: int | None, high: int | None) -> int:
    """As DRF's IntegerField: "3" and 3.0 are 3, 3.5 is not an integer."""
    if isinstance(value, bool):
        raise InvalidRow("A valid integer is required.")
    try:
        number = int(TRAILING_ZERO_DECIMALS.sub("", str(value)))
    except ValueError:
        raise InvalidRow("A valid integer is required.") from None
    if low is not None and number < low:
        raise InvalidRow(f"Ensure this value is greater than or equal to {low}.")
    if high is not None and number > high:
        raise InvalidRow(f"Ensure this value is less than or equal to {high}.")
    return number


def _price(value: Any) -> Decimal:
    """As the API's DecimalField(max_digits=10, decimal_places=2, min_value=0)."""
    if isinstance(value, bool):
        raise InvalidRow("A valid number is required.")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRow("A valid number is required.") from None
    if not price.is_finite():
        raise InvalidRow("A valid number is required.")
    _sign, digits, exponent = price.as_tuple()
    if exponent >= 0:
        total_digits, decimals = len(digits) + exponent, 0
    else:
        decimals = -exponent
        total_digits = max(len(digits), decimals)
    whole_digits = total_digits - decimals
    if total_digits > PRICE_MAX_DIGITS:
        raise InvalidRow(f"Ensure that there are no more than {PRICE_MAX_DIGITS} digits in total.")
    if decimals > PRICE_DECIMAL_PLACES:
        raise InvalidRow(
            f"Ensure that there are no more than {PRICE_DECIMAL_PLACES} decimal places."
        )
    if whole_digits > PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES:
        raise InvalidRow(
            f"Ensure that there are no more than {PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES} "
            "digits before the decimal point."
        )
    if price < 0:
        raise InvalidRow("Ensure this value is greater than or equal to 0.")
    return price.quantize(CENT)


def _timestamp(value: Any) -> datetime:
    """ISO 8601 (naive means UTC, as in the API) or epoch seconds; epoch values of 1e11 and
    more are milliseconds."""
    if isinstance(value, bool):
        raise InvalidRow("Datetime has wrong format.")
    try:
        if isinstance(value, int | float) or EPOCH.match(str(value).strip()):
            seconds = float(value)
            if abs(seconds) >= EPOCH_MS_FROM:
                seconds /= 1000
            return datetime.fromtimestamp(seconds, tz=UTC)
        moment = datetime.fromisoformat(str(value).strip())
    except (ValueError, OverflowError, OSError):
        raise InvalidRow(
            "Datetime has wrong format. Use ISO 8601 (e.g. 2025-01-31T14:05:00Z) or epoch seconds."
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _choice(value: Any) -> str:
    text = _text(value, 1000)
    if text not in EVENT_TYPES:
        raise InvalidRow(f'"{text}" is not a valid choice.')
    return text


def _bounded_integer(low: int | None, high: int | None) -> Callable[[Any], int]:
    return lambda value: _integer(value, low, high)


def _bounded_text(limit: int) -> Callable[[Any], str]:
    return lambda value: _text(value, limit)


# The parser of each field's raw value: a clean value, or InvalidRow with the reason.
PARSERS: dict[str, Callable[[Any], Any]] = {
    "type": _choice,
    "ts": _timestamp,
    "price": _price,
    **{name: _bounded_text(limit) for name, limit in TEXT_LIMITS.items()},
    **{name: _bounded_integer(*limits) for name, limits in INTEGER_LIMITS.items()},
}


def validate_row(values: Mapping[str, Any], *, latest: datetime) -> EventRecord:
    """One row as an EventRecord, or InvalidRow with [(field, message)] in args[0].

    The live API's rules (EventInSerializer) without its maximum age; `ts` is required and may
    not be after `latest` (now plus EVENT_MAX_FUTURE_SKEW_S). A blank value is a missing one."""
    errors: list[tuple[str, str]] = []
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value == "" or (isinstance(value, str) and value.isspace()):
            continue
        try:
            clean[name] = PARSERS[name](value)
        except InvalidRow as error:
            errors.append((name, str(error)))
    if "ts" in clean and clean["ts"] > latest:
        errors.append(
            ("ts", f"is more than {aisle_settings.EVENT_MAX_FUTURE_SKEW_S} s in the future")
        )
    failed = {name for name, _ in errors}
    for name in REQUIRED_FIELDS:
        if name not in clean and name not in failed:
            errors.append((name, "This field is required."))
    if errors:
        raise InvalidRow(errors)
    get = clean.get
    event_type = clean["type"]
    if not get("user_id") and not get("session_id"):
        raise InvalidRow([("", "needs a user_id or a session_id")])
    if event_type in PRODUCT_EVENT_TYPES and not get("product_id"):
        raise InvalidRow([("", f"a {event_type} event needs a product_id")])
    if event_type == EventType.PURCHASE and get("price") is None:
        raise InvalidRow([("", "a purchase event needs a price")])
    quantity = get("quantity")
    if quantity is None and event_type in QUANTITY_DEFAULT_TYPES:
        quantity = 1
    # As the API's to_record: country and device are in the context too.
    context = {name: clean[name] for name in CONTEXT_KEYS if name in clean}
    fields = {
        "event_type": event_type, "occurred_at": clean["ts"], "user_id": get("user_id", ""),
        "session_id": get("session_id", ""), "product_sku": get("product_id", ""),
        "quantity": quantity, "price": get("price"), "order_id": get("order_id", ""),
        "country": get("country", ""), "device": get("device", ""), "context": context,
    }  # fmt: skip
    event_id = get("event_id") or derived_event_id(**fields)
    return EventRecord(event_id=event_id, **fields)


def derived_event_id(
    *,
    event_type: str,
    occurred_at: datetime,
    user_id: str,
    session_id: str,
    product_sku: str,
    quantity: int | None,
    price: Decimal | None,
    order_id: str,
    country: str,
    device: str,
    context: Mapping[str, Any],
) -> str:
    """A stable id from an event's content after validation, so that the same event read from
    another export (other column order, "3.5" for "3.50", epoch for ISO time) gets the same id.
    Two rows alike in every field are one event."""
    parts = (
        event_type, user_id, session_id, product_sku,
        "" if quantity is None else str(quantity), "" if price is None else f"{price:.2f}",
        order_id, occurred_at.astimezone(UTC).isoformat(), country, device,
        json.dumps(context, sort_keys=True, default=str) if context else "",
    )  # fmt: skip
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return DERIVED_ID_PREFIX + digest
