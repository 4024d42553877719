"""A phone that pairs sends its recent chats (the initial history sync): with the demo's history
file (``SIMULATOR_HISTORY_FILE``), a new instance's inbox starts with them, each once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ryze.demo.runner import DEMO_HISTORY
from ryze.devstack import LocalSystem, start_system

from .helpers import wait_conversation, wait_messages

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def phone_with_history(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    running = await start_system(
        tmp_path_factory.mktemp("history"), api_env={"SIMULATOR_HISTORY_FILE": str(DEMO_HISTORY)}
    )
    try:
        yield running
    finally:
        await running.aclose()


async def test_pairing_imports_the_phones_recent_chats(phone_with_history: LocalSystem) -> None:
    system = phone_with_history
    created = await system.create_instance("boot")  # connects: the simulated phone scans the QR
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    convs = await wait_conversation(system, inbox_id, count=2)
    by_contact = {c["meta"]["sender"]["identifier"].split("@")[0]: c for c in convs}
    assert set(by_contact) == {"15555550124", "15555550125"}
    bruno = await wait_messages(system, by_contact["15555550124"]["id"], 3, message_type=None)
    lines = [str(m["content"]).split("\n", 1) for m in bruno]
    assert all(first.endswith("· from WhatsApp history") for first, _ in lines)
    assert [text for _, text in lines] == [
        "Hi! Is my order #1042 on its way?",
        "Hello Bruno, it left our warehouse this morning.",
        "Great, thanks 🙌",
    ]
    assert [m["message_type"] for m in bruno] == [0, 1, 0]

    async def done() -> dict[str, object] | None:
        body = await system.api("GET", "/api/chatwoot/list/boot", expect=200)
        history: dict[str, object] = body.get("history") or {}
        return history if history.get("state") == "done" else None

    history = await system.wait_for(done, timeout=60, what="the bootstrap import")
    assert (history["imported"], history["duplicates"], history["skipped"]) == (5, 0, 0)
    assert len(await system.messages(by_contact["15555550125"]["id"])) == 2
