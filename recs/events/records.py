"""The value object for one shopper event, shared by the API, the stream and importers."""

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class EventRecord:
    """One validated event; plain data so it can travel through Celery as JSON."""

    event_id: str
    event_type: str
    occurred_at: datetime
    user_id: str = ""
    session_id: str = ""
    product_sku: str = ""
    quantity: int | None = None
    price: Decimal | None = None
    order_id: str = ""
    country: str = ""
    device: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    def model_values(self) -> dict[str, Any]:
        """The event log row's values: every field is a column of recs.models.Event (a shallow
        copy: the batch path builds hundreds per request)."""
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    def to_message(self) -> dict[str, Any]:
        """JSON-safe form for the queue. Shallow: the message is serialized at once, and
        dataclasses.asdict's deep copy of every context was a sixth of the API's CPU per event."""
        data = self.model_values()
        data["occurred_at"] = self.occurred_at.isoformat()
        data["price"] = None if self.price is None else str(self.price)
        return data

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> "EventRecord":
        values = dict(data)
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        values["price"] = None if values.get("price") is None else Decimal(values["price"])
        return cls(**values)


# The fields of a record, in order: the columns a log query selects to rebuild records.
RECORD_FIELDS = tuple(f.name for f in fields(EventRecord))
