"""How the emulator delivers webhooks, mode by mode, against a real receiver on 127.0.0.1.

* ``webhook_signing`` off: Chatwoot before 4.13 — no ``secret`` on the API channel, so no
  ``secret`` in the inbox JSON, no ``reset_secret`` route and no signature headers
  (``lib/webhooks/trigger.rb`` signs only when the channel has a secret).
* ``reset_secret`` (``app/controllers/api/v1/accounts/inboxes_controller.rb``): a new secret signs
  from the next webhook on.
* ``webhook_delivery="sidekiq"``: one queue, ten workers (``config/sidekiq.yml``), so two events of
  one conversation are in flight together; ``webhook_duplicate_rate`` delivers a job twice;
  ``hold``/``release`` decide the order.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, Api, Receiver
from .test_emu_webhooks import verify


async def _arrived(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(10):
        while len(receiver.events("message_created")) < count:
            receiver.arrived.clear()
            if len(receiver.events("message_created")) < count:
                await receiver.arrived.wait()


async def test_without_signing_nothing_is_signed_and_there_is_no_secret(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    emu.configure(webhook_signing=False)
    inbox_id, _, conv = await api.chat(webhook_url=receiver.url)
    shown = (await client.get(f"{A1}/inboxes/{inbox_id}", headers=ADMIN)).json()
    assert "secret" not in shown and "hmac_token" in shown
    assert (await client.post(f"{A1}/inboxes/{inbox_id}/reset_secret", headers=ADMIN)).status_code == 404
    await api.message(conv, content="unsigned")
    await emu.incoming_dispatch_idle()
    [hook] = receiver.events("message_created")
    assert "x-chatwoot-signature" not in hook.headers and "x-chatwoot-timestamp" not in hook.headers
    assert hook.headers["x-chatwoot-delivery"]
    assert emu.settings_json()["webhook_signing"] is False


async def test_reset_secret_signs_the_next_webhook_with_the_new_secret(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    inbox_id, _, conv = await api.chat(webhook_url=receiver.url)
    old = emu.state.inboxes[inbox_id].secret
    r = await client.post(f"{A1}/inboxes/{inbox_id}/reset_secret", headers=ADMIN)
    new = r.json()["secret"]
    assert r.status_code == 200 and new != old and emu.state.inboxes[inbox_id].secret == new
    await api.message(conv, content="after reset")
    await emu.incoming_dispatch_idle()
    [hook] = receiver.events("message_created")
    assert verify(new, hook.headers, hook.raw) and not verify(old, hook.headers, hook.raw)


async def test_sidekiq_delivery_has_one_conversations_events_in_flight_at_once(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    emu.configure(webhook_delivery="sidekiq")
    receiver.block = asyncio.Event()  # the receiver holds every request until released
    await api.message(conv, content="one")
    await api.message(conv, content="two")
    await _arrived(receiver, 2)  # both arrive before either is answered
    receiver.block.set()
    await emu.incoming_dispatch_idle()
    assert sorted(h.json["content"] for h in receiver.events("message_created")) == ["one", "two"]


async def test_hold_and_release_reversed_and_duplicates(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    emu.configure(webhook_hold=True, webhook_duplicate_rate=1.0)
    for text in ("a", "b", "c"):
        await api.message(conv, content=text)
    await emu.incoming_dispatch_idle()  # held deliveries are not waited for
    assert receiver.events("message_created") == []
    emu.configure(webhook_release="reverse")
    await emu.incoming_dispatch_idle()
    got = [h.json["content"] for h in receiver.events("message_created")]
    assert got == ["c", "c", "b", "b", "a", "a"]
    ids = [h.headers["x-chatwoot-delivery"] for h in receiver.events("message_created")]
    assert len(set(ids)) == 6  # every copy is its own WebhookJob


@pytest.mark.parametrize(
    "bad",
    [{"webhook_delivery": "fifo"}, {"webhook_duplicate_rate": 2}, {"webhook_release": "sideways"}],
)
def test_bad_delivery_settings_are_refused(emu: ChatwootEmulator, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        emu.configure(**bad)
