"""Training data from the event log (the offline store) and the catalog (via merch selectors)."""

from merch.selectors import product_summaries
from recs.learners.base import CatalogItem, Interactions
from recs.models import Event, SessionLink

TRAINING_EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")


def interactions_from_event_log() -> Interactions:
    """Every interaction event; anonymous events of a linked session count for its user."""
    links = dict(SessionLink.objects.values_list("session_id", "user_id"))
    rows = Event.objects.filter(event_type__in=TRAINING_EVENT_TYPES).exclude(product_sku="")
    columns = rows.values_list(
        "user_id",
        "session_id",
        "product_sku",
        "event_type",
        "occurred_at",
        "quantity",
        "order_id",
        "country",
    )
    users, items, types, times, quantities, orders, countries = [], [], [], [], [], [], []
    for user, session, sku, event_type, occurred_at, quantity, order, country in columns.iterator(
        chunk_size=20000
    ):
        users.append(user or links.get(session, "") or f"session:{session}")
        items.append(sku)
        types.append(event_type)
        times.append(occurred_at.timestamp())
        quantities.append(quantity or 1)
        orders.append(order or "")
        countries.append(country or "")
    return Interactions.from_columns(
        user_ids=users, item_ids=items, event_types=types, timestamps=times,
        quantities=quantities, order_ids=orders, countries=countries,
    )  # fmt: skip


def catalog_items() -> list[CatalogItem]:
    return [
        CatalogItem(
            sku=p.sku,
            title=p.title,
            description=p.description,
            category_path=p.category_path,
            brand=p.brand,
            price=float(p.price),
            attributes=p.attributes or {},
            launched_at=p.launched_at.timestamp(),
        )
        for p in product_summaries()
    ]
