"""The short fault matrix (``make chaos`` in small): a few faults, a few messages, SQLite only.

Each row must show every message both ways arrived exactly once and in order per chat, whatever
the fault did; recovery times are reported by ``make chaos``, never asserted here.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `bench` lives at the repository root, next to `src`
    sys.path.insert(0, str(REPO))

from bench.chaos.faults import BridgeKill, Chatwoot5xx, Fault, LinkDrop, WhatsAppTwice  # noqa: E402
from bench.chaos.report import text_table  # noqa: E402
from bench.chaos.runner import RowConfig, run_row  # noqa: E402
from bench.chaos.stack import ChaosSystem, Configuration, running  # noqa: E402
from bench.chaos.traffic import Chat, open_chats  # noqa: E402
from bench.common import lift_flood_guard  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
async def chaos(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[ChaosSystem, list[Chat]]]:
    config = Configuration(name="sqlite", workdir=tmp_path_factory.mktemp("chaos"))
    async with running(config, tmpfs=False) as cs:
        await lift_flood_guard(cs.system)
        yield cs, await open_chats(cs.system, instances=1, contacts=3)


@pytest.mark.parametrize(
    "fault", [BridgeKill(), LinkDrop(), Chatwoot5xx(), WhatsAppTwice()], ids=lambda f: f.name
)
async def test_a_fault_loses_duplicates_and_reorders_nothing(
    chaos: tuple[ChaosSystem, list[Chat]], fault: Fault
) -> None:
    cs, chats = chaos
    prefix = "s" + "".join(ch for ch in fault.name if ch.isalnum())[:8].lower()
    row = await run_row(cs, chats, fault, prefix, RowConfig(messages=9, lead=1.0, settle=40.0))
    assert row.inbound is not None and row.outbound is not None, row.reason
    table = text_table([row])
    assert row.inbound.sent == row.outbound.sent == 9
    # Both ways everything arrives: agent messages Chatwoot marked failed (its webhook found no
    # bridge; Chatwoot does not retry) are sent by the bridge's catch-up sweep when it is back.
    assert (row.inbound.arrived, row.inbound.lost, row.inbound.duplicated, row.inbound.out_of_order) == (
        9,
        0,
        0,
        0,
    )
    assert row.inbound.unexpected == row.outbound.unexpected == 0
    assert (row.outbound.arrived, row.outbound.failed) == (9, 0), table
    assert (row.outbound.lost, row.outbound.duplicated, row.outbound.out_of_order) == (0, 0, 0), table
    assert row.status == "ok"
