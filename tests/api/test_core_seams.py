"""The RyzeAPI core does not know its Chatwoot module: no import of it, a send receipt from the store
instead of side dictionaries, the media URL named by the module through the bus."""

from __future__ import annotations

import ast
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.api.db import Database
from ryze.api.db.models import AccountRow, InstanceRow
from ryze.api.events import EventBus
from ryze.api.services.store import MessageStore
from ryze.engines.base import Party, WhatsAppMessage

API = Path(__file__).resolve().parents[2] / "src" / "ryze" / "api"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


MODULE = "ryze.api.bridge_link"


def test_the_core_never_imports_its_chatwoot_module() -> None:
    """Only the app's wiring (``app.py``) and the shared migration environment name the module."""
    core = [
        *sorted((API / "services").rglob("*.py")),
        *sorted((API / "db").rglob("*.py")),
        *sorted((API / "routes").rglob("*.py")),
        API / "events.py",
        API / "records.py",
    ]
    offenders = [
        str(path.relative_to(API))
        for path in core
        if any(
            name == "ryze.api.bridge_link" or name.startswith("ryze.api.bridge_link.")
            for name in _imports(path)
        )
    ]
    assert offenders == []


def test_messaging_has_no_chatwoot_special_case() -> None:
    source = (API / "services" / "messaging.py").read_text()
    assert '"chatwoot"' not in source and "'chatwoot'" not in source


def test_no_media_url_unless_a_subscriber_names_one() -> None:
    bus = EventBus()
    assert bus.media_url("shop", "3EB0") is None
    bus.set_media_locator(lambda instance, message_id: f"http://ryze/internal/media/{instance}/{message_id}")
    assert bus.media_url("shop", "3EB0") == "http://ryze/internal/media/shop/3EB0"


class _Writer:
    """A transactional subscriber that writes nothing but records what it was handed."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    def prepare(self, instance: str, envelope: Any) -> Any:
        return None

    def lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()

    async def write(self, conn: AsyncConnection, items: list[Any]) -> list[Any]:
        self.written.extend(items)
        return items

    def committed(self, state: Any) -> None:
        return None

    def rolled_back(self, state: Any) -> None:
        return None


async def test_the_store_answers_a_send_receipt(database_url: str) -> None:
    """``add`` says whether the message was new and which log-writer items committed with it:
    what a bridge command reads its stored result from (no side dictionary)."""
    db = Database(database_url)
    await db.upgrade()
    async with db.session() as session:
        session.add(AccountRow(id="a1", name="", token_hash="h" * 64))
        session.add(InstanceRow(id="i1", account_id="a1", name="shop", token_hash="t" * 64, token_enc="x"))
        await session.commit()
    store = MessageStore(db)
    writer = _Writer()
    msg = WhatsAppMessage(
        id="3EB0RECEIPT", chat=Party(jid="5511@s.whatsapp.net"), sender=Party(jid="me@s.whatsapp.net"),
        from_me=True, timestamp=datetime.now(UTC), kind="text", is_group=False, text="hi",
    )  # fmt: skip
    values = MessageStore.row_values("i1", msg, "chatwoot", {"id": msg.id})
    try:
        first = await store.add(values, [(writer, "result-of-c1")])
        again = await store.add(values, [(writer, "result-of-c1-again")])
    finally:
        await store.aclose()
        await db.aclose()
    assert first.new and first.logged == ("result-of-c1",)
    assert not again.new and again.logged == ()
    assert writer.written == ["result-of-c1"]  # a duplicate's items are not written
