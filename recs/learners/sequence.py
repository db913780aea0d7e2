"""Sequential item-to-item: what shoppers look at next, learnt from the order of session events.

Session-based nearest neighbours and sequential rules ("after i, shoppers go to j within a few
clicks") are simple, fast, and on e-commerce click logs as accurate as recurrent networks or
better (Ludewig & Jannach 2018, "Evaluation of session-based recommendation algorithms"). They
also use the views and clicks that purchase-only models throw away, and they read the order of
events, which matrix models ignore: a shopper on a lantern page is better served by what people
open after that lantern than by everything lantern buyers ever bought.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy import sparse

from recs.learners.base import (
    CatalogItem,
    Interactions,
    ItemIndex,
    Learner,
    item_columns,
    learner_items,
)
from recs.learners.item_matrices import (
    USER_BLOCK,
    compact_codes,
    distinct_pairs,
    known_user_blocks,
    neighbours_in_row,
    positions_of,
    ranked_from_sparse,
    row_excluded,
    top_per_row,
)
from recs.learners.popularity import DEFAULT_EVENT_WEIGHTS


def transition_counts(
    sessions: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    n_items: int,
    window: int,
    distance_decay: float,
) -> sparse.csr_matrix:
    """Items x items: T[i, j] sums decay^(d-1) * weight(j) over j seen d <= window events after
    i in the same session. Events are grouped by session, each in time order; one pass of
    vectorised pairs per offset d, summed as sparse matrices."""
    total = sparse.csr_matrix((n_items, n_items), dtype=np.float32)
    for d in range(1, window + 1):
        if d >= len(items):
            break
        same = (sessions[d:] == sessions[:-d]) & (items[d:] != items[:-d])
        counts = sparse.coo_matrix(
            (
                (weights[d:][same] * distance_decay ** (d - 1)).astype(np.float32),
                (items[:-d][same], items[d:][same]),
            ),
            shape=(n_items, n_items),
        ).tocsr()  # sums repeated pairs
        total = total + counts
    return total.tocsr()


class SequenceLearner(Learner):
    """What shoppers open next: transitions i -> j within `window` events of a session.

    A transition counts `distance_decay^(d-1)` times the event weight of j, so a view that leads
    to a purchase counts more than one that leads to another view; consecutive events on the
    same item are one step (their strongest kind). `backward_weight` blends in j -> i, each row
    is normalised to a distribution over next items, divided by the target's popularity^alpha
    (`popularity_alpha`, so best-sellers do not follow everything), and cut to `neighbours`.

    A shopper is scored from their last `history_size` distinct items, the latest weighing 1 and
    each older one `recency_decay` times the next; a known shopper with no history given is
    scored from their last items in training (kept as a users x items csr whose values are
    1 + age, 1 = the latest)."""

    key = "sequence"
    search_space = {
        "window": [1, 3, 5],
        "recency_decay": [0.5, 0.8],
        "backward_weight": [0.0, 0.5],
        "popularity_alpha": [0.0, 0.5],
    }

    def __init__(
        self,
        event_weights: Mapping[str, float] | None = None,
        window: int = 3,
        distance_decay: float = 0.6,
        backward_weight: float = 0.0,
        popularity_alpha: float = 0.0,
        neighbours: int = 100,
        history_size: int = 10,
        recency_decay: float = 0.8,
    ):
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)
        self.window = window
        self.distance_decay = distance_decay
        self.backward_weight = backward_weight
        self.popularity_alpha = popularity_alpha
        self.neighbours = neighbours
        self.history_size = history_size
        self.recency_decay = recency_decay

    def params(self) -> dict[str, Any]:
        return {
            "event_weights": self.event_weights, "window": self.window,
            "distance_decay": self.distance_decay, "backward_weight": self.backward_weight,
            "popularity_alpha": self.popularity_alpha, "neighbours": self.neighbours,
            "history_size": self.history_size, "recency_decay": self.recency_decay,
        }  # fmt: skip

    def fit(self, interactions: Interactions, catalog: Sequence[CatalogItem]) -> Self:
        items = learner_items(interactions, catalog)
        n_items = len(items)
        cols = item_columns(interactions, items).astype(np.int32)
        weights = interactions.weights(self.event_weights).astype(np.float32)
        kept = (weights > 0) & (cols >= 0)
        # Group by session, each in time order (events are time-sorted, the sort is stable).
        order = np.flatnonzero(kept)
        order = order[np.argsort(interactions.session_codes[order], kind="stable")]
        sessions, steps, step_weights = (
            interactions.session_codes[order],
            cols[order],
            weights[order],
        )
        del order, weights
        # Consecutive events on one item (view, click, cart) are one step of its strongest kind.
        new_step = np.ones(len(steps), dtype=bool)
        new_step[1:] = (sessions[1:] != sessions[:-1]) | (steps[1:] != steps[:-1])
        starts = np.flatnonzero(new_step)
        del new_step
        step_weights = np.maximum.reduceat(step_weights, starts) if len(starts) else step_weights
        sessions, steps = sessions[starts], steps[starts]
        del starts
        transitions = transition_counts(
            sessions, steps, step_weights, n_items, self.window, self.distance_decay
        )
        del sessions, step_weights
        if self.backward_weight:
            transitions = (transitions + self.backward_weight * transitions.T).tocsr()
        self.similarity = self._normalised(transitions, np.bincount(steps, minlength=n_items))
        del steps, transitions

        users = interactions.user_codes if kept.all() else interactions.user_codes[kept]
        rows, present = compact_codes(users, len(interactions.users))
        del users
        cols = cols if kept.all() else cols[kept]
        pairs = distinct_pairs(rows, cols, np.ones(len(rows), dtype=np.float32), n_items)
        del rows, cols
        pairs = pairs.select(pairs.recency < self.history_size)
        self.index = ItemIndex(items=items, users=interactions.users[present])
        self.user_history = pairs.matrix((len(present), n_items), pairs.recency + 1)
        return self

    def _normalised(self, transitions: sparse.csr_matrix, popularity: np.ndarray) -> Any:
        """Rows as distributions over next items, damped by the target's popularity^alpha,
        each cut to its `neighbours` best."""
        transitions.sum_duplicates()
        row_sums = np.asarray(transitions.sum(axis=1), dtype=np.float64).ravel()
        rows = np.repeat(np.arange(transitions.shape[0]), np.diff(transitions.indptr))
        values = transitions.data / row_sums[rows]
        if self.popularity_alpha:
            values /= np.maximum(popularity[transitions.indices], 1) ** self.popularity_alpha
        transitions.data = values.astype(np.float32)
        return top_per_row(transitions, self.neighbours)

    def _history_row(self, user_id: str | None, history: Sequence[str]) -> sparse.csr_matrix:
        """The shopper's last distinct items weighted by recency (1 x items)."""
        latest: list[int] = []
        for position in reversed(positions_of(self.index, history).tolist()):
            if position not in latest:
                latest.append(position)
                if len(latest) >= self.history_size:
                    break
        if latest:
            positions, ages = np.asarray(latest), np.arange(len(latest))
        elif user_id is not None and user_id in self.index.user_position:
            row = self.user_history[self.index.user_position[user_id]]
            positions, ages = row.indices, row.data - 1
        else:
            positions, ages = np.zeros(0, dtype=np.int64), np.zeros(0)
        return sparse.csr_matrix(
            (
                self.recency_decay ** np.asarray(ages, dtype=np.float64),
                (np.zeros(len(positions), dtype=np.int64), positions),
            ),
            shape=(1, len(self.index.items)),
            dtype=np.float32,
        )

    def _scores(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        scores = (rows @ self.similarity).tocsr()
        scores.sort_indices()
        return scores

    def recommend(self, user_id, history, k, *, exclude=(), context=None):
        row = self._history_row(user_id, history)
        if not row.nnz:
            return []
        excluded = np.union1d(
            np.union1d(row.indices, positions_of(self.index, history)),
            positions_of(self.index, exclude),
        )
        return ranked_from_sparse(self._scores(row), 0, self.index.items, k, excluded)

    def recommend_many(
        self, user_ids: Sequence[str], k: int, block: int = USER_BLOCK
    ) -> dict[str, list[tuple[str, float]]]:
        """Known users from their last training items, `block` at a time; others get []."""
        lists: dict[str, list[tuple[str, float]]] = {user: [] for user in user_ids}
        for users, positions in known_user_blocks(user_ids, self.index, block):
            rows = self.user_history[positions]
            rows.data = (self.recency_decay ** (rows.data.astype(np.float64) - 1)).astype(
                np.float32
            )
            scores, excluded = self._scores(rows), row_excluded(rows)
            for r, user in enumerate(users):
                lists[user] = ranked_from_sparse(scores, r, self.index.items, k, excluded[r])
        return lists

    def similar_items(self, sku, k):
        return neighbours_in_row(self.similarity, self.index, sku, k)
