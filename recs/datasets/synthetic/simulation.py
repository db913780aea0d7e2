"""The synthetic shop's event log: sessions of views, and a funnel to carts and purchases.

- shoppers' activity follows a power law, and traffic a daily and weekly cycle with a slow
  growth and two promotion days;
- each visit is a session of views: its first item follows the shopper's taste, each next one is
  mostly a fixed "related item" of the previous one or a latent neighbour in its subcategory, some
  sessions return to an earlier session's item; items rise and fall (seasonality) and new items get
  a launch boost, so recency matters;
- a funnel view -> add_to_cart (~10%) -> purchase (~40% of carts) driven by taste and price;
  the purchases of one session share an order id.

Sampling is vectorised: an item is drawn by popularity among the launched items of a subcategory,
from a few such candidates the taste, trend and launch boost pick one (a Gumbel-max), and sessions
are generated position by position for a chunk of shoppers at once.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recs.datasets.synthetic.catalog import NEIGHBOURS, Catalog
from recs.datasets.synthetic.options import DAY, SyntheticOptions
from recs.datasets.synthetic.shoppers import Shoppers

EVENT_KINDS = ("view", "add_to_cart", "purchase")
VIEW, CART, PURCHASE = 0, 1, 2
ITEM_CANDIDATES = 8  # candidates drawn by popularity, one kept by taste/trend/recency
SUBCATEGORY_CANDIDATES = 4
NEIGHBOUR_P = np.array([0.22, 0.2, 0.13, 0.12, 0.07, 0.06, 0.12, 0.08])
BETA_USER = 4.0  # weight of shopper taste when picking an item
BETA_PREVIOUS = 2.5  # weight of closeness to the previous item within a session
BETA_SUBCATEGORY = 3.0
LAUNCH_BOOST, LAUNCH_BOOST_DAYS = 3.0, 14.0
# Next view of a session: related item / same subcategory / revisit / jump to a new interest.
STEP_P = np.array([0.33, 0.40, 0.08, 0.19]).cumsum()
RETURN_P = 0.2  # a later session of a shopper starts where an earlier one started
MAX_VIEWS = 40
CART_RATE, CONVERT_RATE, BUY_PER_CART = 0.105, 0.5, 0.8  # carts before de-duplication
EVENTS_PER_VIEW = 1.14  # views + carts (after de-duplication) + purchases, measured
SESSION_CHUNK = 100_000

HOURLY = np.array([0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.45, 0.65, 0.8, 0.9, 1.0, 1.05, 1.0, 0.95, 0.95, 1.0, 1.1, 1.3, 1.5, 1.6, 1.45, 1.0, 0.55])  # fmt: skip
WEEKLY = np.array([1.05, 1.0, 0.97, 0.97, 0.95, 1.05, 1.25])  # Monday first


@dataclass(eq=False)
class EventLog:
    """Events sorted by timestamp; items as catalog positions, users as shopper numbers."""

    users: np.ndarray  # int32
    items: np.ndarray  # int32
    kinds: np.ndarray  # int8 into EVENT_KINDS
    timestamps: np.ndarray  # int64
    sessions: np.ndarray  # int32, from 1
    orders: np.ndarray  # int32, from 1; -1 for non-purchases


def _wave(params: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Log-multiplier amplitude * sin(frequency * seconds + phase) of a rise and fall."""
    return params[..., 0] * np.sin(params[..., 1] * seconds + params[..., 2])


def _traffic(options: SyntheticOptions, rng: np.random.Generator) -> np.ndarray:
    """Cumulative share of visits per hour of the log (leading 0): daily and weekly cycle,
    a slow growth and two promotion days."""
    hours = np.arange(options.days * 24)
    day = hours // 24
    weekday = (options.start // DAY + 3 + day) % 7  # 1970-01-01 was a Thursday
    start_hour = (options.start // 3600) % 24
    weight = HOURLY[(start_hour + hours) % 24] * WEEKLY[weekday] * (1 + 0.35 * day / options.days)
    for boost in (2.2, 1.6):
        promo = rng.integers(0, options.days)
        weight[day == promo] *= boost
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    return cum / cum[-1]


def _sessions(
    options: SyntheticOptions, shoppers: Shoppers, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shopper, start time, number of views) per session, sorted by shopper then time; the views
    add up to what the event target needs."""
    views = max(1, round(options.events / EVENTS_PER_VIEW))
    guess = int(views / 4.0) + 16
    lengths = np.empty(0, dtype=np.int64)
    while lengths.sum() < views:
        more = 1 + np.floor(rng.lognormal(1.0, 0.9, guess)).astype(np.int64)
        lengths = np.concatenate([lengths, np.minimum(more, MAX_VIEWS)])
    total = np.cumsum(lengths)
    n_sessions = int(np.searchsorted(total, views)) + 1
    lengths = lengths[:n_sessions]
    lengths[-1] -= total[n_sessions - 1] - views

    # Activity: everyone visits once if there are sessions enough, the rest follows a power law.
    n_users = options.users
    activity = np.minimum(rng.pareto(1.5, n_users) + 1.0, 200.0)
    p = activity / activity.sum()
    if n_sessions >= n_users:
        per_user = 1 + rng.multinomial(n_sessions - n_users, p)
    else:
        per_user = rng.multinomial(n_sessions, p)
    user = np.repeat(np.arange(n_users, dtype=np.int32), per_user)

    traffic = _traffic(options, rng)
    joined_hour = (shoppers.joined_at[user] - options.start) // 3600
    low = traffic[joined_hour]
    hour = np.searchsorted(traffic, low + rng.random(len(user)) * (1.0 - low), side="right") - 1
    hour = np.clip(hour, 0, options.days * 24 - 1)
    start = options.start + hour * 3600 + rng.integers(0, 3600, len(user))
    order = np.lexsort((start, user))
    return user[order], start[order], lengths[rng.permutation(n_sessions)]


def _choose_subcategories(
    catalog: Catalog,
    shoppers: Shoppers,
    rng: np.random.Generator,
    users: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """A session's interest: mostly a subcategory of a preferred top category, sometimes any;
    candidates by popularity, picked by taste and season."""
    n = len(users)
    explore = rng.random(n) < shoppers.explore[users]
    slot = (rng.random(n)[:, None] > shoppers.preferred_cum[users]).sum(axis=1)
    top = shoppers.preferred_tops[users, np.minimum(slot, 2)]
    first = np.where(explore, 0, catalog.top_sub_start[top])
    last = np.where(explore, len(catalog.sub_top), catalog.top_sub_start[top + 1])
    low, high = catalog.sub_cum0[first], catalog.sub_cum0[last]
    draw = low[:, None] + rng.random((n, SUBCATEGORY_CANDIDATES)) * (high - low)[:, None]
    candidates = np.searchsorted(catalog.sub_cum0, draw, side="right") - 1
    np.clip(candidates, first[:, None], (last - 1)[:, None], out=candidates)
    taste = np.matmul(catalog.sub_vectors[candidates], shoppers.vectors[users][:, :, None])[..., 0]
    season = _wave(catalog.sub_season[candidates], (times - catalog.launch_base)[:, None])
    score = BETA_SUBCATEGORY * taste + season + rng.gumbel(size=taste.shape)
    return candidates[np.arange(n), score.argmax(axis=1)].astype(np.int32)


def _sample_items(
    catalog: Catalog,
    rng: np.random.Generator,
    subs: np.ndarray,
    times: np.ndarray,
    user_vectors: np.ndarray,
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """An item per row from the subcategory's items launched by then: candidates by popularity,
    one kept by taste (and closeness to the previous item), trend and launch boost."""
    n = len(subs)
    first = catalog.sub_start[subs]
    key = (subs.astype(np.int64) << 32) | (times - catalog.launch_base)
    end = np.searchsorted(catalog.launch_key, key, side="right")
    low, high = catalog.weight_cum0[first], catalog.weight_cum0[end]
    draw = low[:, None] + rng.random((n, ITEM_CANDIDATES)) * (high - low)[:, None]
    candidates = np.searchsorted(catalog.weight_cum0, draw, side="right") - 1
    np.clip(candidates, first[:, None], (end - 1)[:, None], out=candidates)
    vectors = catalog.vectors[candidates]
    score = BETA_USER * np.matmul(vectors, user_vectors[:, :, None])[..., 0]
    if previous is not None:
        closeness = np.matmul(vectors, catalog.vectors[previous][:, :, None])[..., 0]
        score += BETA_PREVIOUS * closeness
    score += _item_boost(catalog, candidates, times[:, None])
    score += rng.gumbel(size=score.shape)
    return candidates[np.arange(n), score.argmax(axis=1)].astype(np.int32)


def _item_boost(catalog: Catalog, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Log-multiplier of an item's popularity at a time: its rise and fall, and a launch boost."""
    age_days = (times - catalog.launched_at[items]) / DAY
    launch = np.log1p(LAUNCH_BOOST * np.exp(-age_days / LAUNCH_BOOST_DAYS))
    return _wave(catalog.trend[items], times - catalog.launch_base) + launch


def _simulate_chunk(
    catalog: Catalog,
    shoppers: Shoppers,
    rng: np.random.Generator,
    users: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> dict[str, np.ndarray]:
    """Views, carts and purchases of consecutive sessions (all sessions of their shoppers)."""
    n, width = len(users), int(lengths.max())
    present = np.arange(width)[None, :] < lengths[:, None]
    dwell = np.clip(rng.lognormal(np.log(40.0), 1.0, (n, width)), 3, 1800).astype(np.int64)
    dwell[~present] = 0
    times = starts[:, None] + np.concatenate(
        [np.zeros((n, 1), dtype=np.int64), np.cumsum(dwell[:, :-1], axis=1)], axis=1
    )
    user_vectors = shoppers.vectors[users]
    items = np.full((n, width), -1, dtype=np.int32)

    # First views: the session's interest; a returning session starts where an earlier one did.
    interest = _choose_subcategories(catalog, shoppers, rng, users, starts)
    items[:, 0] = _sample_items(catalog, rng, interest, starts, user_vectors)
    returning = np.zeros(n, dtype=bool)
    returning[1:] = (users[1:] == users[:-1]) & (rng.random(n - 1) < RETURN_P)
    root = np.maximum.accumulate(np.where(returning, 0, np.arange(n)))
    items[:, 0] = items[root, 0]

    for j in range(1, width):
        rows = np.flatnonzero(lengths > j)
        t = times[rows, j]
        previous = items[rows, j - 1]
        step = np.searchsorted(STEP_P, rng.random(len(rows)), side="right")
        chosen = np.empty(len(rows), dtype=np.int32)

        related = np.flatnonzero(step == 0)
        slot = np.searchsorted(NEIGHBOUR_P.cumsum(), rng.random(len(related)) * NEIGHBOUR_P.sum())
        slot = np.minimum(slot, NEIGHBOURS - 1)
        candidate = catalog.neighbours[previous[related], slot]
        ok = catalog.launched_at[candidate] <= t[related]
        chosen[related[ok]] = candidate[ok]
        step[related[~ok]] = 1

        revisit = np.flatnonzero(step == 2)
        back = (rng.random(len(revisit)) * j).astype(np.int64)
        chosen[revisit] = items[rows[revisit], back]

        same = np.flatnonzero(step == 1)
        chosen[same] = _sample_items(
            catalog, rng, catalog.item_sub[previous[same]], t[same],
            user_vectors[rows[same]], previous[same],
        )  # fmt: skip

        jump = np.flatnonzero(step == 3)
        subs = _choose_subcategories(catalog, shoppers, rng, users[rows[jump]], t[jump])
        chosen[jump] = _sample_items(catalog, rng, subs, t[jump], user_vectors[rows[jump]])
        items[rows, j] = chosen

    # Funnel: carts by taste, price and the shopper's propensity; one cart per item and session.
    session_of, position = np.nonzero(present)
    viewed = items[session_of, position]
    view_times = times[session_of, position]
    taste = np.einsum("nd,nd->n", catalog.vectors[viewed], user_vectors[session_of])
    logit = -2.5 + 3.0 * taste - 0.4 * catalog.price_z[viewed] + np.log(shoppers.buyer[users])[session_of]  # fmt: skip
    p_cart = 1.0 / (1.0 + np.exp(-logit))
    p_cart = np.minimum(p_cart * (CART_RATE / max(p_cart.mean(), 1e-12)), 0.95)
    carted = np.flatnonzero(rng.random(len(viewed)) < p_cart)
    key = session_of[carted].astype(np.int64) * catalog.size + viewed[carted]
    carted = carted[np.sort(np.unique(key, return_index=True)[1])]
    cart_dwell = dwell[session_of[carted], position[carted]]
    cart_times = view_times[carted] + 1 + (rng.random(len(carted)) * (cart_dwell - 2)).astype(np.int64)  # fmt: skip

    # Purchases: a session with carts converts or not; a converting one buys most of its carts.
    cart_sessions = np.unique(session_of[carted])
    p_convert = np.sqrt(shoppers.buyer[users[cart_sessions]])
    p_convert = np.minimum(p_convert * (CONVERT_RATE / max(p_convert.mean(), 1e-12)), 0.98)
    converting = np.zeros(n, dtype=bool)
    converting[cart_sessions] = rng.random(len(cart_sessions)) < p_convert
    bought = carted[converting[session_of[carted]] & (rng.random(len(carted)) < BUY_PER_CART)]
    buying_sessions, order_local = np.unique(session_of[bought], return_inverse=True)
    session_end = times[np.arange(n), lengths - 1] + dwell[np.arange(n), lengths - 1]
    checkout = session_end + rng.integers(30, 600, n)

    parts = (
        (session_of, viewed, VIEW, view_times, None),
        (session_of[carted], viewed[carted], CART, cart_times, None),
        (session_of[bought], viewed[bought], PURCHASE, checkout[session_of[bought]], order_local),
    )
    return {
        "session": np.concatenate([p[0] for p in parts]).astype(np.int32),
        "user": np.concatenate([users[p[0]] for p in parts]).astype(np.int32),
        "item": np.concatenate([p[1] for p in parts]).astype(np.int32),
        "kind": np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts]),
        "timestamp": np.concatenate([p[3] for p in parts]).astype(np.int64),
        "order": np.concatenate(
            [
                np.full(len(session_of) + len(carted), -1, dtype=np.int32),
                order_local.astype(np.int32),
            ]
        ),
        "orders": np.array(len(buying_sessions)),
    }


def simulate_events(
    options: SyntheticOptions,
    catalog: Catalog,
    shoppers: Shoppers,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> EventLog:
    """All sessions, chunk by chunk of whole shoppers, then every event sorted by timestamp."""
    users, starts, lengths = _sessions(options, shoppers, rng)
    # Chunks end at a shopper boundary, so a returning session finds its earlier one.
    boundaries = np.flatnonzero(np.diff(users)) + 1
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", "kind", "timestamp", "session", "order")}  # fmt: skip
    begin, orders = 0, 0
    while begin < len(users):
        cut = np.searchsorted(boundaries, begin + SESSION_CHUNK)
        end = int(boundaries[cut]) if cut < len(boundaries) else len(users)
        chunk = _simulate_chunk(
            catalog, shoppers, rng, users[begin:end], starts[begin:end], lengths[begin:end]
        )
        chunk["session"] += begin + 1
        chunk["order"][chunk["order"] >= 0] += orders + 1
        orders += int(chunk.pop("orders"))
        for name, values in chunk.items():
            columns[name].append(values)
        if progress:
            progress(int(lengths[begin:end].sum()))
        begin = end
    timestamps = np.concatenate(columns.pop("timestamp"))
    order = np.argsort(timestamps, kind="stable")
    timestamps = timestamps[order]
    sorted_columns = {}
    for name in list(columns):
        sorted_columns[name] = np.concatenate(columns.pop(name))[order]
    return EventLog(
        users=sorted_columns["user"],
        items=sorted_columns["item"],
        kinds=sorted_columns["kind"],
        timestamps=timestamps,
        sessions=sorted_columns["session"],
        orders=sorted_columns["order"],
    )
