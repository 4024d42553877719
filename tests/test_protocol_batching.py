"""The link's batched frames (``events``, ``acks``) and their negotiation, at the contract level:
they round-trip, both generations of each side read each other, and RyzeAPI's spliced ``events``
frame is exactly the model's."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ryze.api.bridge_link.link import chunk_rows, event_frame, events_frame
from ryze.protocol import (
    AckFrame,
    AcksFrame,
    BatchedEvent,
    EventFrame,
    EventsFrame,
    ReadyFrame,
    ResumeFrame,
    dump_frame,
    parse_client_frame,
    parse_server_frame,
)


def _envelope(text: str) -> dict[str, object]:
    return {
        "event": "message.exchange",
        "data": {"id": text, "message": {"id": text, "content": {"text": text}}},
        "instanceData": {"baseUrl": "http://ryzeapi.test", "instance": "shop"},
    }


def test_events_and_acks_frames_round_trip() -> None:
    events = EventsFrame(
        events=[BatchedEvent.model_validate({"seq": s, "event": _envelope(f"m{s}")}) for s in (3, 5, 9)]
    )
    assert parse_server_frame(dump_frame(events)) == events
    acks = AcksFrame(seqs=[9, 3, 5])
    parsed = parse_client_frame(dump_frame(acks))
    assert isinstance(parsed, AcksFrame) and parsed.seqs == [9, 3, 5]  # any order, kept as sent
    with pytest.raises(ValidationError):
        parse_client_frame('{"type": "acks", "seqs": ["x"]}')
    with pytest.raises(ValidationError):
        parse_server_frame('{"type": "events", "events": [{"seq": 1}]}')


def test_negotiation_fields_default_to_the_old_behaviour() -> None:
    # An older bridge's resume and an older RyzeAPI's ready carry no such field: no batching.
    resume = parse_client_frame('{"type": "resume", "after": 41, "protocol": 1}')
    assert isinstance(resume, ResumeFrame) and resume.batch is False
    ready = parse_server_frame('{"type": "ready", "instance": "s", "last_seq": 5, "pending": 0}')
    assert isinstance(ready, ReadyFrame) and ready.batch is False
    # A newer side's frames carry it, and the other side's models read it.
    asked = parse_client_frame(dump_frame(ResumeFrame(after=41, batch=True)))
    assert isinstance(asked, ResumeFrame) and (asked.after, asked.batch) == (41, True)
    granted = parse_server_frame(dump_frame(ReadyFrame(instance="s", last_seq=5, pending=0, batch=True)))
    assert isinstance(granted, ReadyFrame) and granted.batch is True
    # Single frames are unchanged.
    assert parse_client_frame(dump_frame(AckFrame(seq=7))) == AckFrame(seq=7)


def test_spliced_events_frame_equals_the_single_frames() -> None:
    rows = [(s, json.dumps(_envelope(f"m{s}"))) for s in (11, 12, 15)]
    batched = parse_server_frame(events_frame(rows))
    assert isinstance(batched, EventsFrame)
    singles = [parse_server_frame(event_frame(s, p)) for s, p in rows]
    assert all(isinstance(f, EventFrame) for f in singles)
    assert [(e.seq, e.event) for e in batched.events] == [
        (f.seq, f.event) for f in singles if isinstance(f, EventFrame)
    ]


def test_chunks_respect_both_caps_and_keep_every_row_in_order() -> None:
    rows = [(s, "x" * 100) for s in range(1, 11)]
    by_count = list(chunk_rows(rows, 3, 10_000))
    assert [len(c) for c in by_count] == [3, 3, 3, 1]
    by_size = list(chunk_rows(rows, 64, 250))  # two 100-char payloads fit, a third would not
    assert [len(c) for c in by_size] == [2, 2, 2, 2, 2]
    for chunks in (by_count, by_size):
        assert [row for chunk in chunks for row in chunk] == rows
    # An event bigger than the byte cap still goes out, alone; nothing is empty.
    mixed = [(1, "a"), (2, "b" * 1000), (3, "c")]
    assert [[s for s, _ in c] for c in chunk_rows(mixed, 64, 100)] == [[1], [2], [3]]
    assert list(chunk_rows([], 64, 100)) == []
