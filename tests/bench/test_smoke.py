"""Smoke test of the benchmark harness: every phase with tiny counts against a real local system.

Correctness only (every injected message found exactly once, every agent message reaches the phone,
the result has the shape the report and the JSON expect). Never speed: timing assertions do not
belong in tests. No ``__init__.py`` here on purpose: a ``tests/bench`` package would shadow the
top-level ``bench`` package this test exercises.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `bench` lives at the repository root, next to `src`
    sys.path.insert(0, str(REPO))

from bench.ceiling import CeilingConfig, run_ceiling  # noqa: E402
from bench.common import lift_flood_guard  # noqa: E402
from bench.inbound import InboundConfig, chats_of, run_inbound  # noqa: E402
from bench.media import MediaConfig, MediaTracker, make_images, run_media, summarize  # noqa: E402
from bench.outbound import OutboundConfig, run_outbound  # noqa: E402
from bench.report import build_table, derive, write_json  # noqa: E402
from bench.scale import ScaleConfig, run_scale  # noqa: E402
from bench.stats import latency_summary, paced_count, pacing_rate, percentile, steady_rate  # noqa: E402

from ryze.devstack import LocalSystem, start_system  # noqa: E402

pytestmark = pytest.mark.e2e

LATENCY_KEYS = {"count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    running = await start_system(tmp_path_factory.mktemp("bench-system"))
    try:
        await lift_flood_guard(running)
        yield running
    finally:
        await running.aclose()


def test_stats_helpers() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert latency_summary([])["count"] == 0
    assert set(latency_summary([0.001, 0.002])) == LATENCY_KEYS
    assert steady_rate([float(i) for i in range(20)]) == pytest.approx(1.0)


def test_a_handful_of_bunched_arrivals_paces_at_the_whole_runs_rate() -> None:
    # Six arrivals seen in one poll round, 1 ms apart, 3 s after the run began: the trimmed rate
    # would claim 1,000/s and queue thousands of paced messages for a six-message run.
    bunched = [103.000, 103.001, 103.002, 103.003, 103.004, 103.005]
    assert pacing_rate(bunched, began=100.0) == pytest.approx(6 / 3.005)
    assert pacing_rate([float(i) for i in range(20)], began=-5.0) == pytest.approx(1.0)
    assert pacing_rate([], began=100.0) == 0.0
    assert paced_count(1000.0, 10.0, flat_out_messages=6) == 60
    assert paced_count(0.01, 10.0, flat_out_messages=6) == 1


async def test_relay_phases_find_every_message(system: LocalSystem, tmp_path: Path) -> None:
    inbound, instances, tracker = await run_inbound(
        system,
        InboundConfig(
            instances=2,
            contacts=2,
            messages=10,
            batch=3,
            concurrency=4,
            setup_seconds=30,
            latency_seconds=0.5,
        ),
    )
    assert inbound["warmup"]["complete"] and inbound["warmup"]["found"] == 4
    assert inbound["messages"] == 10
    assert inbound["found"] == 10 and inbound["lost"] == 0 and inbound["duplicates"] == 0
    assert inbound["post_errors"] == 0
    assert inbound["complete"] is True
    assert set(inbound["latency_saturated"]) == LATENCY_KEYS and inbound["latency_saturated"]["count"] == 10
    assert inbound["paced"]["complete"] is True and inbound["paced"]["messages"] >= 3
    assert {"api", "bridge", "emulator", "bench"} <= set(inbound["cpu_seconds_per_1000"])

    ceiling = await run_ceiling(system, CeilingConfig(conversations=2, messages=10, concurrency=4))
    assert ceiling["messages"] == 10 and ceiling["conversations"] == 2
    assert ceiling["latency"]["count"] == 10

    chats = chats_of(instances, tracker)
    assert len(chats) == 4
    outbound = await run_outbound(
        system, chats, OutboundConfig(messages=6, concurrency=3, latency_seconds=0.5)
    )
    assert outbound["delivered"] == 6 and outbound["lost"] == 0 and outbound["duplicates"] == 0
    assert outbound["post_errors"] == 0
    assert outbound["complete"] is True and outbound["paced"]["complete"] is True
    sent = outbound["messages"] + outbound["paced"]["messages"]  # flat-out run, then the paced one
    assert outbound["webhook_ack"]["deliveries"] == sent and outbound["webhook_ack"]["failed"] == 0

    media = await run_media(system, MediaConfig(images=6, image_kib=8, concurrency=3), instances)
    assert media["sent"] == 6 and media["found"] == 6 and media["lost"] == 0 and media["duplicates"] == 0
    # Either every image arrived with its own bytes, or the run says the bridge sent placeholders
    # and reports no media figure (a placeholder's speed is a text figure).
    relayed = media["bytes_match"] == 6 and media["complete"] and media["rate"] is not None
    placeholders = media["placeholders"] == 6 and not media["complete"] and media["rate"] is None
    assert relayed or placeholders, media
    assert media["relayed_as"].startswith("attachments" if relayed else "text placeholders")
    if relayed:
        assert {"api", "bridge", "emulator"} <= set(media["cpu_ms_per_image"])
        assert media["latency"]["count"] == 6

    results = {
        "machine": {},
        "phases": {"inbound": inbound, "ceiling": ceiling, "outbound": outbound, "media": media},
    }
    results["derived"] = derive(results)
    assert results["derived"]["inbound_relay_over_ceiling"] is not None
    build_table(results)  # renders without the scale phase
    write_json(results, tmp_path / "latest.json")
    assert (tmp_path / "latest.json").read_text().startswith("{")


async def test_scale_phase_links_and_relinks(tmp_path: Path) -> None:
    system = await start_system(tmp_path / "scale")
    try:
        scale = await run_scale(
            system,
            ScaleConfig(integrations=20, settle_seconds=0.5, idle_seconds=1.0, relink_seconds=30.0),
        )
    finally:
        await system.aclose()
    assert scale["created"] == 20 and scale["linked"] is True
    assert scale["relink"]["complete"] is True
    assert {"bridge", "api", "emulator"} <= set(scale["rss_kib_per_integration"])
    assert {"bridge", "api"} <= set(scale["idle_cpu_percent"])


def test_media_figures_count_only_images_whose_bytes_arrived() -> None:
    """The media summary pairs each emulator row with the SHA-256 of the image sent: a matching
    attachment counts, other bytes or a text placeholder do not, and without one match there is
    no figure at all."""
    import hashlib

    images = make_images("3EB0TEST", 3, 1)
    assert len({hashlib.sha256(b).hexdigest() for b in images.values()}) == 3  # distinct bytes
    ids = list(images)
    tracker = MediaTracker(prefix="3EB0TEST")
    tracker.expected = {i: hashlib.sha256(images[i]).hexdigest() for i in ids}
    tracker.sent = dict.fromkeys(ids, 100.0)
    rows = [
        {"id": 1, "source_id": f"WAID:{ids[0]}", "created_at": 100.5,
         "attachments": [{"sha256": tracker.expected[ids[0]]}]},
        {"id": 2, "source_id": f"WAID:{ids[1]}", "created_at": 101.0, "attachments": [{"sha256": "0" * 64}]},
        {"id": 3, "source_id": f"WAID:{ids[2]}", "created_at": 101.5, "content": "[image]"},
        {"id": 4, "source_id": f"WAID:{ids[0]}", "created_at": 102.0},  # created twice
        {"id": 5, "source_id": "WAID:3EB0OTHER", "created_at": 102.0},  # not ours
    ]  # fmt: skip
    tracker.absorb(rows)
    assert (tracker.matched, tracker.mismatched, tracker.placeholders) == ({ids[0]}, {ids[1]}, {ids[2]})
    assert tracker.duplicates == 1 and tracker.cursor == 5
    config = MediaConfig(images=3, image_kib=1)
    rss = {"api": 1000, "bridge": 2000}
    mixed = summarize(tracker, config, 100.0, {"api": 0.3, "bridge": 0.6}, rss, rss, rss)
    assert mixed["relayed_as"].startswith("mixed") and mixed["complete"] is False
    assert mixed["bytes_match"] == 1 and mixed["cpu_ms_per_image"] == {"api": 300.0, "bridge": 600.0}
    assert mixed["rate"] == 2.0  # one matched image, 0.5 s after the run began

    placeholder_only = MediaTracker(prefix="3EB0TEST", expected=tracker.expected, sent=dict(tracker.sent))
    placeholder_only.absorb([{**r, "attachments": []} for r in rows[:3]])
    none = summarize(placeholder_only, config, 100.0, {}, rss, rss, rss)
    assert none["relayed_as"].startswith("text placeholders") and none["rate"] is None
    assert "cpu_ms_per_image" not in none and none["placeholders"] == 3
