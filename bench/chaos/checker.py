"""Counting what went wrong: pure functions over what was sent and what arrived, per chat.

Kept free of I/O so it can be tested on crafted inputs (tests/bench/test_chaos_checker.py): a
harness that cannot see a loss, a duplicate or a reordering would print zeros whatever happens.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Counts:
    sent: int
    arrived: int  # distinct sent messages that arrived at least once
    lost: int  # sent, never arrived, and not shown as failed to whoever sent it
    duplicated: int  # extra copies of messages that arrived more than once
    out_of_order: int  # per chat: arrivals that are not in the longest in-order run (len - LIS)
    failed: int  # never arrived but shown to the sender as failed (Chatwoot's "failed" status)
    unexpected: int  # arrivals nobody sent (garbled or foreign content)

    @property
    def clean(self) -> bool:
        """Nothing lost, duplicated, reordered or foreign — and nothing left *failed*: the bridge
        sends what Chatwoot marked failed when its webhook found no bridge (the catch-up sweep,
        docs/bridge.md §5a), so a message still failed is one the sender must send again."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.out_of_order == 0
            and self.unexpected == 0
            and self.failed == 0
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def astuple(counts: Counts) -> tuple[int, ...]:
    return (
        counts.sent,
        counts.arrived,
        counts.lost,
        counts.duplicated,
        counts.out_of_order,
        counts.failed,
        counts.unexpected,
    )


def out_of_order(indices: Sequence[int]) -> int:
    """How many arrivals must move to make the sequence increasing: ``len - LIS`` (patience sort).

    ``[0, 2, 1, 3]`` -> 1 (one message overtook another); ``[3, 0, 1, 2]`` -> 1 (the last one came
    first); ``[2, 1, 0]`` -> 2.
    """
    tails: list[int] = []
    for index in indices:
        at = bisect.bisect_left(tails, index)
        if at == len(tails):
            tails.append(index)
        else:
            tails[at] = index
    return len(indices) - len(tails)


def check(
    sent: Mapping[str, Sequence[str]],
    arrived: Iterable[tuple[str, str]],
    failed: Iterable[str] = (),
) -> Counts:
    """``sent``: chat -> tokens in the order they were sent in that chat. ``arrived``: (chat, token)
    in arrival order, every copy. ``failed``: tokens the sender was shown as failed."""
    position = {token: (chat, i) for chat, tokens in sent.items() for i, token in enumerate(tokens)}
    copies: Counter[str] = Counter()
    order: dict[str, list[int]] = {chat: [] for chat in sent}
    unexpected = 0
    for chat, token in arrived:
        where = position.get(token)
        if where is None or where[0] != chat:
            unexpected += 1  # unknown, or in the wrong chat
            continue
        copies[token] += 1
        if copies[token] == 1:
            order[chat].append(where[1])
    failed_set = {token for token in failed if token in position and token not in copies}
    total = len(position)
    distinct = len(copies)
    return Counts(
        sent=total,
        arrived=distinct,
        lost=total - distinct - len(failed_set),
        duplicated=sum(n - 1 for n in copies.values()),
        out_of_order=sum(out_of_order(indices) for indices in order.values()),
        failed=len(failed_set),
        unexpected=unexpected,
    )


def recovery_seconds(healed_at: float | None, arrival_times: Iterable[float]) -> float | None:
    """From the heal to the last arrival (0 when everything had arrived by then); None when nothing
    arrived or the fault was never healed."""
    times = list(arrival_times)
    if healed_at is None or not times:
        return None
    return max(0.0, max(times) - healed_at)


def problems(
    sent: Mapping[str, Sequence[str]],
    arrived: Iterable[tuple[str, str]],
    failed: Iterable[str] = (),
    *,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Per chat, which messages were lost, left failed, duplicated or arrived out of place (for the
    JSON report: a row that is not clean must say exactly what went wrong)."""
    arrivals = list(arrived)
    failed_set = set(failed)
    out: list[dict[str, Any]] = []
    for chat, tokens in sent.items():
        mine = [token for c, token in arrivals if c == chat]
        copies = Counter(mine)
        first: list[str] = []
        for token in mine:
            if token not in first:
                first.append(token)
        index = {token: i for i, token in enumerate(tokens)}
        order = [index[t] for t in first if t in index]
        entry: dict[str, Any] = {}
        lost = [t for t in tokens if t not in copies and t not in failed_set]
        dups = sorted(t for t, n in copies.items() if n > 1)
        if lost:
            entry["lost"] = lost[:limit]
        still_failed = [t for t in tokens if t not in copies and t in failed_set]
        if still_failed:
            entry["failed"] = still_failed[:limit]
        if dups:
            entry["duplicated"] = dups[:limit]
        if out_of_order(order):
            entry["arrival_order"] = [tokens[i] for i in order][: 3 * limit]
        if entry:
            out.append({"chat": chat, **entry})
    strays = [(c, t) for c, t in arrivals if t not in {tok for toks in sent.values() for tok in toks}]
    if strays:
        out.append({"unexpected": [f"{c}: {t}" for c, t in strays[:limit]]})
    return out
