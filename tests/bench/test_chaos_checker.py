"""The fault matrix's checker sees each kind of failure: crafted sends and arrivals, no processes.

A checker that always said 0 would make every row of ``make chaos`` look right; these inputs have
a known number of losses, duplicates, reorderings, failures shown to the sender and strays.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `bench` lives at the repository root, next to `src`
    sys.path.insert(0, str(REPO))

from bench.chaos.checker import check, out_of_order, problems, recovery_seconds  # noqa: E402

SENT = {"a": ["a0", "a1", "a2", "a3"], "b": ["b0", "b1"]}


def arrivals(*pairs: str) -> list[tuple[str, str]]:
    return [(token[0], token) for token in pairs]


def test_everything_once_in_order_is_clean() -> None:
    counts = check(SENT, arrivals("a0", "b0", "a1", "a2", "b1", "a3"))
    assert (counts.sent, counts.arrived, counts.lost, counts.duplicated, counts.out_of_order) == (
        6,
        6,
        0,
        0,
        0,
    )
    assert counts.clean


def test_a_missing_message_is_lost() -> None:
    counts = check(SENT, arrivals("a0", "a1", "a3", "b0", "b1"))
    assert (counts.arrived, counts.lost) == (5, 1)
    assert not counts.clean


def test_copies_count_as_duplicates_but_arrive_once() -> None:
    counts = check(SENT, arrivals("a0", "a0", "a1", "a2", "a3", "a3", "a3", "b0", "b1"))
    assert (counts.arrived, counts.lost, counts.duplicated, counts.out_of_order) == (6, 0, 3, 0)
    assert not counts.clean


def test_a_late_duplicate_is_no_reordering() -> None:
    # The first copy came in order; a redelivery later is a duplicate, not a disorder.
    counts = check(SENT, arrivals("a0", "a1", "a0", "a2", "a3", "b0", "b1"))
    assert (counts.duplicated, counts.out_of_order) == (1, 0)


def test_overtaking_within_a_chat_is_out_of_order() -> None:
    counts = check(SENT, arrivals("a1", "a0", "a2", "a3", "b0", "b1"))
    assert counts.out_of_order == 1
    assert not counts.clean


def test_order_is_per_chat_not_global() -> None:
    # b's messages between a's (and b before a) are no disorder: chats are independent.
    counts = check(SENT, arrivals("b0", "a0", "b1", "a1", "a2", "a3"))
    assert counts.out_of_order == 0


def test_failed_shown_to_the_sender_is_not_lost_but_not_clean_either() -> None:
    # the bridge catches up what Chatwoot marked failed: one left failed must be sent again by hand
    counts = check(SENT, arrivals("a0", "a1", "a3", "b0", "b1"), failed=["a2"])
    assert (counts.lost, counts.failed) == (0, 1)
    assert not counts.clean
    assert problems(SENT, arrivals("a0", "a1", "a3", "b0", "b1"), failed=["a2"]) == [
        {"chat": "a", "failed": ["a2"]}
    ]


def test_a_message_marked_failed_that_arrived_anyway_counts_as_arrived() -> None:
    counts = check(SENT, arrivals("a0", "a1", "a2", "a3", "b0", "b1"), failed=["a2"])
    assert (counts.arrived, counts.failed, counts.lost) == (6, 0, 0)


def test_a_message_in_the_wrong_chat_or_unknown_is_unexpected() -> None:
    counts = check(SENT, [("a", "a0"), ("b", "a1"), ("a", "zz"), *arrivals("a2", "a3", "b0", "b1")])
    assert (counts.unexpected, counts.lost) == (2, 1)  # a1 never reached chat a
    assert not counts.clean


def test_out_of_order_counts_the_messages_out_of_place() -> None:
    assert out_of_order([]) == 0
    assert out_of_order([0, 1, 2]) == 0
    assert out_of_order([0, 2, 1, 3]) == 1
    assert out_of_order([3, 0, 1, 2]) == 1
    assert out_of_order([2, 1, 0]) == 2


def test_recovery_is_from_heal_to_the_last_arrival() -> None:
    assert recovery_seconds(100.0, [99.0, 103.5, 101.0]) == 3.5
    assert recovery_seconds(100.0, [98.0, 99.5]) == 0.0  # all there before the heal
    assert recovery_seconds(None, [1.0]) is None
    assert recovery_seconds(100.0, []) is None


def test_counts_add_up_across_directions() -> None:
    inbound = check(SENT, arrivals("a0", "a0", "a1", "a2", "a3", "b0", "b1"))
    outbound = check(SENT, arrivals("a0", "a2", "a1", "b0"), failed=["a3"])
    total = inbound + outbound
    assert (total.sent, total.arrived, total.lost, total.duplicated, total.out_of_order, total.failed) == (
        12,
        10,
        1,
        1,
        1,
        1,
    )


def test_problems_name_the_messages_per_chat() -> None:
    found = problems(SENT, [*arrivals("a1", "a0", "a0", "b0"), ("b", "zz")])
    assert found == [
        {"chat": "a", "lost": ["a2", "a3"], "duplicated": ["a0"], "arrival_order": ["a1", "a0"]},
        {"chat": "b", "lost": ["b1"]},
        {"unexpected": ["b: zz"]},
    ]
    assert problems(SENT, arrivals("a0", "a1", "a2", "a3", "b0", "b1")) == []
