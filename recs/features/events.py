"""The event as the feature store sees it: resolved user, product category, epoch seconds."""

from dataclasses import dataclass

from recs.events.records import EventRecord


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """An event enriched for feature computation; built the same way online and offline."""

    event_id: str
    event_type: str
    ts: float  # epoch seconds, UTC
    user_id: str  # the event's user, or the user its session was linked to at login
    session_id: str
    product_sku: str
    quantity: int | None
    price: float | None
    order_id: str
    country: str
    device: str
    category: str  # the product's category path ("" when unknown)
    # An anonymous event whose session was linked to user_id at a login: its user's share is
    # applied apart from the rest (recs.features.online), once, by whichever path comes first.
    user_from_link: bool = False

    @classmethod
    def from_record(
        cls, record: EventRecord, *, category: str = "", linked_user_id: str = ""
    ) -> "FeatureEvent":
        return cls(
            event_id=record.event_id,
            event_type=record.event_type,
            ts=record.occurred_at.timestamp(),
            user_id=record.user_id or linked_user_id,
            session_id=record.session_id,
            product_sku=record.product_sku,
            quantity=record.quantity,
            price=None if record.price is None else float(record.price),
            order_id=record.order_id,
            country=record.country,
            device=record.device,
            category=category,
            user_from_link=not record.user_id and bool(linked_user_id),
        )

    def entity_ids(self, entity: str) -> list[str]:
        """Which entities of a kind this event updates."""
        if entity == "user":
            return [self.user_id] if self.user_id else []
        if entity == "session":
            return [self.session_id] if self.session_id else []
        if entity == "product":
            return [self.product_sku] if self.product_sku else []
        if entity == "segment":
            segments = ["all"]
            if self.country:
                segments.append(f"country:{self.country}")
            if self.device:
                segments.append(f"device:{self.device}")
            return segments
        raise KeyError(entity)
