"""Reads of merchandising: placements and their rules, as plain data the engine can cache."""

from dataclasses import dataclass

from merch.models import MerchandisingRule, Placement
from merch.selectors._shared import epoch


@dataclass(frozen=True)
class PlacementConfig:
    """How one placement is filled, as plain data the engine can cache."""

    key: str
    name: str
    default_strategy: str
    size: int
    exclude_purchased: bool
    max_per_category: int
    is_active: bool
    anchor: str = "none"  # product | cart | category | none (merch.models.Placement.Anchor)


@dataclass(frozen=True)
class RuleConfig:
    """One active merchandising rule as plain data; times are epoch seconds, "" = no category."""

    id: int
    placement_key: str
    category_path: str
    sku: str
    action: str
    position: int | None
    multiplier: float
    starts_at: float | None
    ends_at: float | None

    def is_live(self, now: float) -> bool:
        """Within its schedule at `now` (epoch seconds): start inclusive, end exclusive."""
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )

    def applies_to_category(self, category_path: str) -> bool:
        """A rule scoped to a category applies on that category's pages and those below it."""
        return not self.category_path or (
            category_path == self.category_path
            or category_path.startswith(self.category_path + "/")
        )


def merchandising_config() -> tuple[dict[str, PlacementConfig], list[RuleConfig]]:
    """Every placement by key, and every active rule, in two queries.

    The schedule is not applied here: the result is cached, and a cached copy must not go stale
    when a rule's start or end passes, so the reader checks `RuleConfig.is_live` per request.
    """
    placements = {
        placement.key: PlacementConfig(
            key=placement.key,
            name=placement.name,
            default_strategy=placement.default_strategy,
            size=placement.size,
            exclude_purchased=placement.exclude_purchased,
            max_per_category=placement.max_per_category,
            is_active=placement.is_active,
            anchor=placement.anchor,
        )
        for placement in Placement.objects.order_by("key")
    }
    rows = (
        MerchandisingRule.objects.filter(is_active=True)
        .order_by("pk")
        .values_list(
            "pk", "placement__key", "category__path", "product__sku", "action", "position",
            "multiplier", "starts_at", "ends_at",
        )
    )  # fmt: skip
    rules = [
        RuleConfig(
            id=pk,
            placement_key=placement_key,
            category_path=category_path or "",
            sku=sku,
            action=action,
            position=position,
            multiplier=multiplier,
            starts_at=epoch(starts_at),
            ends_at=epoch(ends_at),
        )
        for (
            pk, placement_key, category_path, sku, action, position, multiplier, starts_at, ends_at
        ) in rows
    ]  # fmt: skip
    return placements, rules


def placement_keys() -> list[str]:
    """The keys of the defined placements, for the API schema's enum."""
    return list(Placement.objects.order_by("key").values_list("key", flat=True))
