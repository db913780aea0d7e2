"""Value objects of the render path: what a page asks for and what it gets back."""

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecommendationContext:
    """Everything the page knows about the request; all optional but the placement."""

    placement: str
    user_id: str = ""
    session_id: str = ""
    product_sku: str = ""  # the product on the page (product_detail)
    cart_skus: tuple[str, ...] = ()  # what the page knows is in the cart (added to the online cart)
    category_path: str = ""  # the category page ("home/candles")
    device: str = ""
    country: str = ""
    referrer: str = ""
    limit: int | None = None  # None: the placement's size
    now_s: float | None = None  # for tests and replays; None: the wall clock
    apply_rules: bool = True  # False only for the admin's before/after preview of the rules
    # Serve this strategy (or learner key) instead of experiment assignment; shadow scoring uses
    # it, and nothing served with it is logged as experiment traffic.
    strategy_override: str = ""

    @property
    def subject_id(self) -> str:
        """Who is being served: the user when known, else the anonymous session."""
        return self.user_id or (f"session:{self.session_id}" if self.session_id else "")


@dataclass(frozen=True)
class RecommendedItem:
    sku: str
    score: float
    reason: str  # "similar to Red heart lantern you viewed", "trending in Germany", ...
    title: str = ""
    price: str = ""
    currency: str = ""
    image_url: str = ""
    category_path: str = ""
    is_new: bool = False
    pinned: bool = False
    url: str = ""  # the shop's own page of the product, when its catalog gave one


@dataclass
class Recommendations:
    """One served list. `rec_id` goes back with impression and click events for attribution."""

    placement: str
    items: list[RecommendedItem]
    tier: str  # anonymous | content | collaborative
    source: str  # where the first items came from: a candidate list, a fallback step, "fallback"
    variant: str
    model_version: str
    rec_id: str
    generated_at: float  # when the candidate lists behind the answer were computed (epoch s)
    fallbacks: list[str] = field(default_factory=list)  # reasons a fallback step was used
    served_at: float = field(default_factory=time.time)

    @property
    def age_s(self) -> float:
        return max(self.served_at - self.generated_at, 0.0) if self.generated_at else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (built by hand: dataclasses.asdict deep-copies every item)."""
        return {
            "placement": self.placement,
            "items": [dict(item.__dict__) for item in self.items],
            "tier": self.tier,
            "source": self.source,
            "variant": self.variant,
            "model_version": self.model_version,
            "rec_id": self.rec_id,
            "generated_at": self.generated_at,
            "age_s": round(self.age_s, 3),
            "fallbacks": list(self.fallbacks),
            "served_at": self.served_at,
        }


@dataclass
class RequestCounter:
    """A counter that a request's one Redis round trip increments and reads back (the read
    API's rate limit): `value` is the count after this request, None when Redis did not
    answer (the caller fails open)."""

    key: str
    ttl_s: int
    value: int | None = None


@dataclass
class RideAlong:
    """What a caller of recommend() adds to the request's one round trip: a counter to
    increment (the read API's rate limit) and keys to read (versions of what the caller holds
    in process, such as API keys). `values` is filled when Redis answered."""

    counter: RequestCounter | None = None
    read_keys: tuple[str, ...] = ()
    values: dict[str, bytes | None] = field(default_factory=dict)
