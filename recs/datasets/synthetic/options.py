"""What to generate: the options of a synthetic shop, and the units its times are in."""

from dataclasses import dataclass

DEFAULT_START = 1735689600  # 2025-01-01T00:00:00Z
DAY = 86400


@dataclass(frozen=True)
class SyntheticOptions:
    """What to generate; the same options and seed give the same files."""

    items: int = 5000
    users: int = 20000
    events: int = 300_000
    days: int = 120
    seed: int = 0
    start: int = DEFAULT_START  # epoch seconds UTC of the log's first instant

    def __post_init__(self) -> None:
        if self.items < 10 or self.users < 1 or self.events < 1 or self.days < 1:
            raise ValueError("need items >= 10, users >= 1, events >= 1, days >= 1")

    @property
    def end(self) -> int:
        return self.start + self.days * DAY
