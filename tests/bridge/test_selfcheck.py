"""Each self-check against the in-memory Chatwoot: what the operator reads for each situation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from ryze.bridge.control.probe import WebhookProbe
from ryze.bridge.control.selfcheck import (
    INBOX,
    ROUND_TRIP,
    SIGNING_SECRET,
    TOKEN_ADMIN,
    WEBHOOK_HOST,
    SelfCheck,
    SelfCheckTarget,
    address_is_private,
    masked_url,
    parse_version,
    render,
)
from ryze.chatwoot import ChatwootAuthError
from ryze.chatwoot.models import Inbox, Profile, ProfileAccount
from ryze.protocol import CheckOutcome, SelfCheckReport

from .chatwoot_fake import InMemoryChatwoot

INBOX_ID = 7
PUBLIC = "https://bridge.example.com"
INTEGRATION = "abc123"
PATH_SECRET = "the-path-secret"
SECRET = "inbox-secret"
WEBHOOK = f"{PUBLIC}/v1/chatwoot/webhook/{INTEGRATION}/{PATH_SECRET}"


@dataclass
class Room:
    """The connection conversation, in memory: posts land in the fake Chatwoot; ``delivers``
    says whether Chatwoot's webhook for a note reaches the bridge (reported to the probe)."""

    chatwoot: InMemoryChatwoot
    probe: WebhookProbe
    delivers: bool = True
    delivery_error: str = ""
    on_delivery: list[str] = field(default_factory=list)  # a secret the bridge takes on that webhook
    conversation: int = 0

    async def conversation_id(self) -> int:
        if not self.conversation:
            contact = await self.chatwoot.create_contact(name="Ryze · shop", identifier="ryze-control:shop")
            conv = await self.chatwoot.create_conversation(
                inbox_id=INBOX_ID, contact_id=contact.id, source_id="ryze-control:shop"
            )
            self.conversation = conv.id
        return self.conversation

    async def post(self, text: str, *, private: bool = False) -> int:
        message = await self.chatwoot.create_message(
            await self.conversation_id(), content=text, message_type="outgoing", private=private
        )
        if self.delivers:
            self.probe.saw(message.id)
        elif self.delivery_error:
            stored = self.chatwoot.messages[message.id]
            stored.status, stored.external_error = "failed", self.delivery_error
        return message.id


@dataclass
class Bridge:
    secret: str = SECRET
    webhook_error: str = ""


def healthy_chatwoot() -> InMemoryChatwoot:
    chatwoot = InMemoryChatwoot(inbox_id=INBOX_ID)
    chatwoot.profile_view = Profile(
        id=1, name="Acme Admin", accounts=[ProfileAccount(id=1, role="administrator")]
    )
    chatwoot.inbox_view = Inbox(
        id=INBOX_ID, name="WhatsApp", channel_type="Channel::Api", webhook_url=WEBHOOK, secret=SECRET
    )
    chatwoot.version = "4.15.1"
    return chatwoot


async def run_check(
    chatwoot: InMemoryChatwoot,
    *,
    bridge: Bridge | None = None,
    room: Room | bool | None = True,
    private_host: bool | None = False,
    public_url: str = PUBLIC,
) -> SelfCheckReport:
    held = bridge or Bridge()
    probe = WebhookProbe()
    if room is True:
        room = Room(chatwoot, probe)
    elif isinstance(room, Room):
        room.probe = probe
    target = SelfCheckTarget(
        integration_id=INTEGRATION,
        account_id=1,
        inbox_id=INBOX_ID,
        public_url=public_url,
        path_secret_hash=hashlib.sha256(PATH_SECRET.encode()).hexdigest(),
        inbox_secret=lambda: held.secret,
        webhook_error=lambda: held.webhook_error,
    )

    async def judge(_host: str) -> bool | None:
        return private_host

    check = SelfCheck(
        target=target,
        chatwoot=chatwoot,
        room=room or None,
        probe=probe,
        round_trip_timeout=0.2,
        host_is_private=judge,
    )
    return await check.run("on_demand")


def entry(report: SelfCheckReport, name: str) -> tuple[CheckOutcome, str]:
    [found] = [c for c in report.checks if c.name == name]
    return found.status, found.message


async def test_a_healthy_integration_passes_every_check_in_order() -> None:
    chatwoot = healthy_chatwoot()
    report = await run_check(chatwoot)
    assert [c.name for c in report.checks] == [TOKEN_ADMIN, INBOX, SIGNING_SECRET, WEBHOOK_HOST, ROUND_TRIP]
    assert report.status is CheckOutcome.OK, report
    assert "Acme Admin" in entry(report, TOKEN_ADMIN)[1]
    # the note is private, in the connection conversation: never something to relay
    [note] = chatwoot.messages.values()
    assert note.private and "self-check" in (note.content or "")


async def test_an_agent_role_token_fails_the_token_check() -> None:
    chatwoot = healthy_chatwoot()
    chatwoot.profile_view = Profile(id=2, name="Acme Agent", accounts=[ProfileAccount(id=1, role="agent")])
    status, message = entry(await run_check(chatwoot), TOKEN_ADMIN)
    assert status is CheckOutcome.FAIL
    assert "Acme Agent" in message and "not an administrator" in message and "401" in message


async def test_a_token_of_another_account_fails_the_token_check() -> None:
    chatwoot = healthy_chatwoot()
    chatwoot.profile_view = Profile(
        id=1, name="Acme Admin", accounts=[ProfileAccount(id=9, role="administrator")]
    )
    status, message = entry(await run_check(chatwoot), TOKEN_ADMIN)
    assert status is CheckOutcome.FAIL and "not a member of Chatwoot account 1" in message


async def test_an_agent_bot_token_and_a_revoked_token_are_told_apart() -> None:
    chatwoot = healthy_chatwoot()
    bots = '{"error":"Access to this endpoint is not authorized for bots"}'
    chatwoot.fail("profile", ChatwootAuthError(401, bots, endpoint="GET /api/v1/profile"))
    status, message = entry(await run_check(chatwoot), TOKEN_ADMIN)
    assert status is CheckOutcome.FAIL and "agent bot" in message

    chatwoot.fail("profile", ChatwootAuthError(401, '{"error":"Invalid Access Token"}', endpoint="GET /x"))
    status, message = entry(await run_check(chatwoot), TOKEN_ADMIN)
    assert status is CheckOutcome.FAIL and "Invalid Access Token" in message and "revoked" in message


async def test_a_deleted_inbox_fails_the_inbox_check_and_the_secret_is_not_judged() -> None:
    chatwoot = healthy_chatwoot()
    chatwoot.inbox_deleted = True
    report = await run_check(chatwoot, room=None)
    status, message = entry(report, INBOX)
    assert status is CheckOutcome.FAIL and f"Inbox {INBOX_ID} no longer exists" in message
    assert entry(report, SIGNING_SECRET)[0] is CheckOutcome.WARN


async def test_an_inbox_of_another_channel_type_fails() -> None:
    chatwoot = healthy_chatwoot()
    assert chatwoot.inbox_view is not None
    chatwoot.inbox_view = chatwoot.inbox_view.model_copy(update={"channel_type": "Channel::WebWidget"})
    status, message = entry(await run_check(chatwoot), INBOX)
    assert status is CheckOutcome.FAIL and "not an API inbox" in message


async def test_a_webhook_url_pointing_elsewhere_fails_without_showing_a_path_secret() -> None:
    chatwoot = healthy_chatwoot()
    assert chatwoot.inbox_view is not None
    other = "https://old-bridge.example.com/v1/chatwoot/webhook/abc123/old-secret-value"
    chatwoot.inbox_view = chatwoot.inbox_view.model_copy(update={"webhook_url": other})
    status, message = entry(await run_check(chatwoot), INBOX)
    assert status is CheckOutcome.FAIL
    assert "old-bridge.example.com" in message and "old-secret-value" not in message
    assert PUBLIC in message

    # the right prefix with another path secret is not this bridge's URL either
    chatwoot.inbox_view = chatwoot.inbox_view.model_copy(update={"webhook_url": WEBHOOK + "x"})
    assert entry(await run_check(chatwoot), INBOX)[0] is CheckOutcome.FAIL


async def test_an_inbox_without_a_signing_secret_is_a_warning() -> None:
    chatwoot = healthy_chatwoot()
    assert chatwoot.inbox_view is not None
    chatwoot.inbox_view = chatwoot.inbox_view.model_copy(update={"secret": None})
    status, message = entry(await run_check(chatwoot, bridge=Bridge(secret="")), SIGNING_SECRET)
    assert status is CheckOutcome.WARN and "no webhook signing secret" in message and "4.13" in message


async def test_a_secret_the_bridge_does_not_hold_fails_with_the_reason() -> None:
    chatwoot = healthy_chatwoot()
    bridge = Bridge(secret="an-old-secret", webhook_error="the inbox's secret could not be read")
    report = await run_check(chatwoot, bridge=bridge, room=Room(chatwoot, WebhookProbe(), delivers=False))
    status, message = entry(report, SIGNING_SECRET)
    assert status is CheckOutcome.FAIL and "could not be read" in message
    assert SECRET not in message and "an-old-secret" not in message
    # the note's webhook was refused for its signature: the round trip says so, not "unreachable"
    status, message = entry(report, ROUND_TRIP)
    assert status is CheckOutcome.FAIL and "signature" in message


async def test_a_secret_the_bridge_has_yet_to_learn_is_a_warning() -> None:
    chatwoot = healthy_chatwoot()  # an inbox from before 4.13, given a secret by the upgrade
    status, message = entry(await run_check(chatwoot, bridge=Bridge(secret="")), SIGNING_SECRET)
    assert status is CheckOutcome.WARN and "does not hold its secret yet" in message


async def test_a_secret_learned_from_the_round_trips_webhook_is_ok() -> None:
    chatwoot = healthy_chatwoot()
    bridge = Bridge(secret="")

    class LearningRoom(Room):
        async def post(self, text: str, *, private: bool = False) -> int:
            bridge.secret = SECRET  # the first signed webhook made the bridge read the inbox
            return await super().post(text, private=private)

    report = await run_check(chatwoot, bridge=bridge, room=LearningRoom(chatwoot, WebhookProbe()))
    assert entry(report, SIGNING_SECRET) == (
        CheckOutcome.OK,
        "The inbox signs its webhooks now; the bridge has taken its secret.",
    )


async def test_a_secret_reset_taken_during_the_round_trip_is_reported_as_such() -> None:
    chatwoot = healthy_chatwoot()
    bridge = Bridge(secret="an-old-secret")

    class TakingRoom(Room):
        async def post(self, text: str, *, private: bool = False) -> int:
            bridge.secret = SECRET  # the webhook failed the old secret; the bridge re-read the inbox
            return await super().post(text, private=private)

    report = await run_check(chatwoot, bridge=bridge, room=TakingRoom(chatwoot, WebhookProbe()))
    status, message = entry(report, SIGNING_SECRET)
    assert status is CheckOutcome.OK and "reset" in message


async def test_a_private_host_refused_by_chatwoot_414_fails_both_host_and_round_trip() -> None:
    chatwoot = healthy_chatwoot()
    refused = "Hostname 'bridge' has no public ip addresses"
    room = Room(chatwoot, WebhookProbe(), delivers=False, delivery_error=refused)
    report = await run_check(chatwoot, room=room, private_host=True, public_url="http://bridge:8090")
    status, message = entry(report, WEBHOOK_HOST)
    assert status is CheckOutcome.FAIL
    assert "SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true" in message and "4.15.1" in message
    status, message = entry(report, ROUND_TRIP)
    assert status is CheckOutcome.FAIL
    assert "http://bridge:8090" in message and refused in message
    assert report.status is CheckOutcome.FAIL


async def test_an_unreachable_url_is_the_round_trip_not_the_host() -> None:
    chatwoot = healthy_chatwoot()
    error = "Failed to open TCP connection to 10.0.0.5:8090 (Connection refused)"
    room = Room(chatwoot, WebhookProbe(), delivers=False, delivery_error=error)
    report = await run_check(chatwoot, room=room, private_host=True, public_url="http://10.0.0.5:8090")
    assert entry(report, WEBHOOK_HOST)[0] is CheckOutcome.OK  # Chatwoot did try: SafeFetch let it through
    status, message = entry(report, ROUND_TRIP)
    assert status is CheckOutcome.FAIL and "cannot reach BRIDGE_PUBLIC_URL (http://10.0.0.5:8090)" in message
    assert error in message


async def test_a_webhook_that_never_arrives_and_left_no_trace_names_the_url() -> None:
    chatwoot = healthy_chatwoot()
    report = await run_check(chatwoot, room=Room(chatwoot, WebhookProbe(), delivers=False))
    status, message = entry(report, ROUND_TRIP)
    assert status is CheckOutcome.FAIL and f"cannot reach BRIDGE_PUBLIC_URL ({PUBLIC})" in message
    assert entry(report, WEBHOOK_HOST)[0] is CheckOutcome.OK  # a public host


@pytest.mark.parametrize(
    ("version", "expected"),
    [("4.12.1", CheckOutcome.OK), (None, CheckOutcome.WARN), ("4.16.2-ce", CheckOutcome.OK)],
)
async def test_a_private_host_by_chatwoot_version(version: str | None, expected: CheckOutcome) -> None:
    chatwoot = healthy_chatwoot()
    chatwoot.version = version
    report = await run_check(chatwoot, private_host=True, public_url="http://127.0.0.1:8090")
    # the note arrived: on 4.16 that means SAFE_FETCH_ALLOW_PRIVATE_NETWORK is set
    status, message = entry(report, WEBHOOK_HOST)
    assert status is expected, message
    assert "127.0.0.1" in message


async def test_without_a_connection_conversation_the_round_trip_is_not_run() -> None:
    chatwoot = healthy_chatwoot()
    report = await run_check(chatwoot, room=None, private_host=True)
    assert entry(report, ROUND_TRIP)[0] is CheckOutcome.WARN
    assert entry(report, WEBHOOK_HOST)[0] is CheckOutcome.WARN  # 4.15.1 may refuse it: cannot tell
    assert chatwoot.messages == {}


async def test_a_failed_post_of_the_note_is_a_round_trip_failure() -> None:
    chatwoot = healthy_chatwoot()
    chatwoot.fail(
        "create_message",
        ChatwootAuthError(401, '{"error":"You are not authorized to do this action"}', endpoint="POST /m"),
    )
    status, message = entry(await run_check(chatwoot), ROUND_TRIP)
    assert status is CheckOutcome.FAIL and "could not post" in message and "not authorized" in message


async def test_the_report_reads_as_one_line_per_check() -> None:
    chatwoot = healthy_chatwoot()
    chatwoot.inbox_deleted = True
    text = render(await run_check(chatwoot, room=None))
    lines = text.splitlines()
    assert lines[0].startswith("❌ Self-check:")
    assert [line.split(":", 1)[0] for line in lines[1:]] == [
        "✅ Token",
        "❌ Inbox",
        "⚠️ Signing secret",
        "✅ Webhook host",
        "⚠️ Round trip",
    ]


def test_helpers() -> None:
    assert parse_version("4.16.2-ce") == (4, 16, 2)
    assert parse_version("v4.14") == (4, 14, 0)
    assert parse_version("nightly") is None
    assert address_is_private("127.0.0.1") and address_is_private("10.1.2.3")
    assert address_is_private("100.64.0.1") and address_is_private("::1")
    assert address_is_private("::ffff:192.168.0.1")
    assert address_is_private("93.184.216.34") is False
    assert address_is_private("bridge") is None
    assert masked_url(WEBHOOK) == f"{PUBLIC}/v1/chatwoot/webhook/{INTEGRATION}/…"


async def test_the_probe_sees_a_webhook_that_came_before_the_wait_and_only_while_watching() -> None:
    probe = WebhookProbe()
    probe.saw(5)  # no watch open: forgotten
    assert not probe.watching
    with probe.watch() as watch:
        assert probe.watching
        probe.saw(6)  # arrives before post() returned the id
        probe.saw(True)  # not a message id
        assert await watch.wait_for(6, timeout=0.01)
        assert not await watch.wait_for(5, timeout=0.01)
        assert not await watch.wait_for(1, timeout=0.01)
    assert not probe.watching


async def test_a_connection_conversation_that_breaks_is_reported_not_raised() -> None:
    chatwoot = healthy_chatwoot()

    class BrokenRoom(Room):
        async def post(self, text: str, *, private: bool = False) -> int:
            raise RuntimeError("the bot contact could not be created")

    report = await run_check(chatwoot, room=BrokenRoom(chatwoot, WebhookProbe()))
    status, message = entry(report, ROUND_TRIP)
    assert status is CheckOutcome.FAIL and "RuntimeError" in message and "log" in message
