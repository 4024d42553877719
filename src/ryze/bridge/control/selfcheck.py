"""The self-check of one integration: five checks, one typed report (docs/selfcheck.md).

1. ``token_admin``: ``GET /api/v1/profile`` lists the token's accounts, each with the user's
   ``role`` there (``app/views/api/v1/models/_user.json.jbuilder``). An agent's token gets 401
   "You are not authorized to do this action" from the inbox calls the bridge needs later
   (``InboxPolicy``: update, reset_secret, destroy are admin-only), and an agent bot's token gets
   401 from the profile itself (``AccessTokenAuthHelper``: bots reach only a few endpoints).
2. ``inbox``: ``GET …/inboxes/{id}`` is an API inbox (``channel_type`` ``Channel::Api``) whose
   ``webhook_url`` is this bridge's: ``BRIDGE_PUBLIC_URL/v1/chatwoot/webhook/{id}/{path secret}``
   (only the secret's SHA-256 is stored, so the URL is compared through it).
3. ``signing_secret``: the inbox's ``secret`` (``Channel::Api`` ``has_secure_token :secret``,
   v4.13+, shown to administrators only; not ``hmac_token``, which is the Public API's identity
   key) is the one the bridge verifies webhooks with. Judged after the round trip: a secret reset
   in Chatwoot is taken by the bridge at the first webhook that fails with the old one.
4. ``webhook_host``: Chatwoot ≥ 4.14 delivers webhooks through SafeFetch (``lib/safe_fetch.rb``,
   the ``ssrf_filter`` gem), which refuses hosts with no public address unless
   ``SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true`` (4.14.1+). The version comes from the public
   ``GET /api`` (``app/controllers/api_controller.rb``); the account's own answer has none.
5. ``round_trip``: a private note in the connection conversation, and its ``message_created``
   webhook awaited (private notes reach an API inbox's URL; the relay never sends them). When it
   does not come, Chatwoot has usually marked the note ``failed`` with the delivery's error
   (``Webhooks::Trigger#handle_error`` → ``Messages::StatusUpdateService``): it is quoted.

Nothing here raises for a Chatwoot failure: each becomes the sentence of its check.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from ryze.bridge.control.ports import ControlRoom
from ryze.bridge.control.probe import WebhookProbe
from ryze.chatwoot import ChatwootAuthError, ChatwootError, ChatwootNotFound, error_summary
from ryze.chatwoot.models import Inbox, Message, Profile, ServerInfo
from ryze.protocol import CheckOutcome, CheckResult, SelfCheckReport

log = logging.getLogger(__name__)

TOKEN_ADMIN = "token_admin"  # noqa: S105 (a check's name)
INBOX = "inbox"
SIGNING_SECRET = "signing_secret"  # noqa: S105 (a check's name)
WEBHOOK_HOST = "webhook_host"
ROUND_TRIP = "round_trip"
ORDER = (TOKEN_ADMIN, INBOX, SIGNING_SECRET, WEBHOOK_HOST, ROUND_TRIP)
TITLES = {
    TOKEN_ADMIN: "Token",
    INBOX: "Inbox",
    SIGNING_SECRET: "Signing secret",
    WEBHOOK_HOST: "Webhook host",
    ROUND_TRIP: "Round trip",
}

API_CHANNEL = "Channel::Api"
SAFE_FETCH_SINCE = (4, 14, 0)  # webhooks through SafeFetch
SAFE_FETCH_ESCAPE_SINCE = (4, 14, 1)  # SAFE_FETCH_ALLOW_PRIVATE_NETWORK exists
NOTE = (
    "🔎 Ryze self-check: this private note tests that Chatwoot's webhooks reach the bridge. "
    "It is never sent to WhatsApp."
)
_SEVERITY = {CheckOutcome.OK: 0, CheckOutcome.WARN: 1, CheckOutcome.FAIL: 2}
_ICONS = {CheckOutcome.OK: "✅", CheckOutcome.WARN: "⚠️", CheckOutcome.FAIL: "❌"}


class SelfCheckChatwoot(Protocol):
    """The Chatwoot calls the self-check makes (``ChatwootClient`` implements them)."""

    async def profile(self) -> Profile: ...

    async def server_info(self) -> ServerInfo: ...

    async def show_inbox(self, inbox_id: int) -> Inbox: ...

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Message]: ...


HostIsPrivate = Callable[[str], Awaitable[bool | None]]  # None: cannot be told (no answer from DNS)


@dataclass(frozen=True)
class SelfCheckTarget:
    """What the bridge holds for the integration, and reads while the check runs."""

    integration_id: str
    account_id: int
    inbox_id: int
    public_url: str  # BRIDGE_PUBLIC_URL
    path_secret_hash: str
    inbox_secret: Callable[[], str]  # the secret the bridge verifies webhooks with now
    webhook_error: Callable[[], str]  # why webhooks fail the signature check ("" when they pass)

    @property
    def webhook_prefix(self) -> str:
        return f"{self.public_url.rstrip('/')}/v1/chatwoot/webhook/{self.integration_id}/"


@dataclass(frozen=True)
class RoundTrip:
    ran: bool
    arrived: bool = False
    seconds: float = 0.0
    problem: str = ""  # the sentence of a failure
    delivery_error: str = ""  # what Chatwoot stored on the note when its webhook failed


def parse_version(value: str | None) -> tuple[int, int, int] | None:
    """``"4.15.1"``, ``"4.16.2-ce"`` → ``(4, 15, 1)``; None when it is no version."""
    match = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", value or "")
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def address_is_private(value: str) -> bool | None:
    """True for an address SSRF filters refuse (loopback, private, link-local, CGNAT, reserved)."""
    try:
        address = ipaddress.ip_address(value.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global


async def resolve_is_private(host: str, *, timeout: float = 2.0) -> bool | None:
    """Whether ``host`` has no public address, as Chatwoot's SafeFetch judges a webhook host.

    Resolved from the bridge's network, which is an approximation of Chatwoot's: a Docker service
    name resolves to a private address on both, which is the case that matters.
    """
    literal = address_is_private(host)
    if literal is not None:
        return literal
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError):
        return None
    verdicts = [address_is_private(str(info[4][0])) for info in infos]
    if not verdicts:
        return None
    return all(v is True for v in verdicts)


def masked_url(url: str) -> str:
    """A webhook URL without its last path segment (a path secret, when it is the bridge's)."""
    parts = urlsplit(url)
    path = parts.path.rsplit("/", 1)[0] + "/…" if parts.path.count("/") > 1 else parts.path
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.scheme else "(not a URL)"


def _problem(exc: ChatwootError) -> str:
    summary = error_summary(exc.body) if exc.body else ""
    status = getattr(exc, "status", None)
    head = f"{status}" if status else type(exc).__name__
    return f"{head}{': ' + summary if summary else ''}"


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def worst(results: list[CheckResult]) -> CheckOutcome:
    return max((r.status for r in results), key=_SEVERITY.__getitem__, default=CheckOutcome.OK)


class SelfCheck:
    """Runs the five checks of one integration once; ``room`` is the connection conversation."""

    def __init__(
        self,
        *,
        target: SelfCheckTarget,
        chatwoot: SelfCheckChatwoot,
        room: ControlRoom | None,
        probe: WebhookProbe,
        round_trip_timeout: float,
        host_is_private: HostIsPrivate = resolve_is_private,
    ) -> None:
        self.target = target
        self.chatwoot = chatwoot
        self.room = room
        self.probe = probe
        self.round_trip_timeout = round_trip_timeout
        self.host_is_private = host_is_private

    async def run(self, trigger: str) -> SelfCheckReport:
        admin, token = await self._token()
        inbox, inbox_result = await self._inbox()
        secret_before = self.target.inbox_secret()
        version = await self._version()
        trip = await self._round_trip()
        results = {
            TOKEN_ADMIN: token,
            INBOX: inbox_result,
            SIGNING_SECRET: self._secret(inbox, admin, secret_before),
            WEBHOOK_HOST: await self._host(version, trip),
            ROUND_TRIP: self._trip_result(trip),
        }
        checks = [results[name] for name in ORDER]
        report = SelfCheckReport(status=worst(checks), trigger=trigger, ran_at=_iso_now(), checks=checks)
        log.info(
            "self-check done",
            extra={
                "integration_id": self.target.integration_id,
                "status": report.status.value,
                "failed": [c.name for c in checks if c.status is not CheckOutcome.OK],
            },
        )
        return report

    # ------------------------------------------------------------------ 1. token

    async def _token(self) -> tuple[bool | None, CheckResult]:
        account = self.target.account_id
        try:
            profile = await self.chatwoot.profile()
        except ChatwootAuthError as exc:
            if "bots" in (exc.body or ""):
                return False, _fail(
                    TOKEN_ADMIN,
                    "The token belongs to an agent bot, which Chatwoot lets call only a few endpoints: "
                    "run set again with the access token of an administrator "
                    "(Profile settings → Access Token).",
                )
            return False, _fail(
                TOKEN_ADMIN,
                f"Chatwoot refuses the token ({_problem(exc)}): it was revoked or mistyped; run set again "
                "with the access token of an administrator of the account.",
            )
        except ChatwootError as exc:
            return None, _warn(TOKEN_ADMIN, f"Chatwoot did not say who the token is ({_problem(exc)}).")
        who = profile.name or f"user {profile.id}"
        membership = next((a for a in profile.accounts if a.id == account), None)
        if membership is None:
            return False, _fail(
                TOKEN_ADMIN,
                f"The token's user ({who}) is not a member of Chatwoot account {account}: add the user "
                "to the account as an administrator, or run set with a token of that account.",
            )
        if membership.role != "administrator":
            return False, _fail(
                TOKEN_ADMIN,
                f"The token's user ({who}) is {membership.role or 'no'} role on account {account}, not an "
                "administrator: Chatwoot answers 401 to the inbox changes the bridge makes (update, "
                "secret, delete) and hides the signing secret. Make the user an administrator "
                "(Settings → Agents) or run set with an administrator's token.",
            )
        return True, _ok(TOKEN_ADMIN, f"The token is {who}'s, an administrator of account {account}.")

    # ------------------------------------------------------------------ 2. inbox

    async def _inbox(self) -> tuple[Inbox | None, CheckResult]:
        inbox_id = self.target.inbox_id
        try:
            inbox = await self.chatwoot.show_inbox(inbox_id)
        except ChatwootNotFound:
            return None, _fail(
                INBOX, f"Inbox {inbox_id} no longer exists in Chatwoot: run set again to create a new one."
            )
        except ChatwootAuthError as exc:
            return None, _fail(
                INBOX,
                f"The token cannot read inbox {inbox_id} ({_problem(exc)}): use an administrator's token.",
            )
        except ChatwootError as exc:
            return None, _warn(INBOX, f"Inbox {inbox_id} could not be read ({_problem(exc)}).")
        if inbox.channel_type != API_CHANNEL:
            return inbox, _fail(
                INBOX,
                f"Inbox {inbox_id} ({inbox.name}) is a {inbox.channel_type or 'unknown'} inbox, not an API "
                "inbox: run set again to create the bridge's own API inbox.",
            )
        url = inbox.webhook_url or ""
        prefix = self.target.webhook_prefix
        if not (
            url.startswith(prefix)
            and hashlib.sha256(url[len(prefix) :].encode()).hexdigest() == self.target.path_secret_hash
        ):
            where = masked_url(url) if url else "nowhere (no webhook URL)"
            return inbox, _fail(
                INBOX,
                f"Inbox {inbox_id} ({inbox.name}) sends its events to {where}, not to this bridge "
                f"({prefix}…): agents' replies do not reach WhatsApp. If BRIDGE_PUBLIC_URL changed, "
                "set it back; otherwise delete the integration and run set again.",
            )
        return inbox, _ok(
            INBOX, f"Inbox {inbox_id} ({inbox.name}) is an API inbox that sends its events to this bridge."
        )

    # ------------------------------------------------------------------ 3. signing secret

    def _secret(self, inbox: Inbox | None, admin: bool | None, before: str) -> CheckResult:
        if inbox is None:
            return _warn(SIGNING_SECRET, "Not checked: the inbox could not be read.")
        held = self.target.inbox_secret()
        if not inbox.secret:
            if admin is False:
                return _warn(
                    SIGNING_SECRET,
                    "Not checked: Chatwoot shows an inbox's signing secret to administrators only.",
                )
            return _warn(
                SIGNING_SECRET,
                "The inbox has no webhook signing secret (Chatwoot before 4.13): webhooks arrive "
                "unsigned and only the secret path of the webhook URL protects them. Upgrade Chatwoot "
                "to 4.13 or later; the bridge then takes the secret by itself.",
            )
        if held == inbox.secret:
            if before and before != held:
                return _ok(
                    SIGNING_SECRET,
                    "The inbox's signing secret was reset in Chatwoot; the bridge has taken the new one.",
                )
            if not before:
                return _ok(
                    SIGNING_SECRET, "The inbox signs its webhooks now; the bridge has taken its secret."
                )
            return _ok(
                SIGNING_SECRET, "The inbox signs its webhooks, and the bridge holds the current secret."
            )
        if not held:
            # An inbox from before 4.13 that Chatwoot's upgrade gave a secret: the bridge reads it
            # in the background after the first signed webhook (relay/outbound/inbox_secret.py).
            return _warn(
                SIGNING_SECRET,
                "The inbox signs its webhooks now (Chatwoot 4.13 or later) and the bridge does not hold "
                "its secret yet: it reads it after the next signed webhook; run the self-check again.",
            )
        reason = self.target.webhook_error()
        return _fail(
            SIGNING_SECRET,
            "The bridge holds another signing secret than the inbox's (reset in Chatwoot?) and has not "
            f"taken the new one{': ' + reason if reason else ''}. Run set again to store the current one.",
        )

    # ------------------------------------------------------------------ 4. webhook host

    async def _version(self) -> tuple[int, int, int] | None:
        try:
            info = await self.chatwoot.server_info()
        except ChatwootError as exc:
            log.info(
                "Chatwoot's version unknown",
                extra={"integration_id": self.target.integration_id, "error": str(exc)[:200]},
            )
            return None
        return parse_version(info.version)

    async def _host(self, version: tuple[int, int, int] | None, trip: RoundTrip) -> CheckResult:
        host = urlsplit(self.target.public_url).hostname or ""
        private = await self.host_is_private(host)
        shown = ".".join(str(p) for p in version) if version else "unknown"
        if private is False:
            return _ok(WEBHOOK_HOST, f"BRIDGE_PUBLIC_URL's host {host} is a public address.")
        if private is None:
            what = f"BRIDGE_PUBLIC_URL's host {host} does not resolve from the bridge"
        else:
            what = f"BRIDGE_PUBLIC_URL's host {host} is a private or loopback address"
        if version is None:
            return _warn(
                WEBHOOK_HOST,
                f"{what}, and Chatwoot's version is unknown: Chatwoot 4.14 and later refuse such webhook "
                "hosts unless SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true is set on Chatwoot.",
            )
        if version < SAFE_FETCH_SINCE:
            return _ok(
                WEBHOOK_HOST,
                f"{what}; Chatwoot {shown} delivers to it. From 4.14 on Chatwoot refuses it unless "
                "SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true: set that before upgrading.",
            )
        if trip.arrived:
            return _ok(
                WEBHOOK_HOST,
                f"{what}; Chatwoot {shown} delivers to it (SAFE_FETCH_ALLOW_PRIVATE_NETWORK is set).",
            )
        fix = (
            "set SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true on Chatwoot's web and Sidekiq containers"
            if version >= SAFE_FETCH_ESCAPE_SINCE
            else "upgrade Chatwoot to 4.14.1 or later and set SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true"
        )
        if trip.delivery_error and not _refused_as_private(trip.delivery_error):
            # Chatwoot did try to connect: SafeFetch let the host through, the round trip says why not.
            return _ok(
                WEBHOOK_HOST,
                f"{what}; Chatwoot {shown} accepts it as a webhook host (SAFE_FETCH_ALLOW_PRIVATE_NETWORK "
                "is set), see the round trip for why the webhook did not arrive.",
            )
        # Refused by SafeFetch (its own words on the note), or no evidence either way.
        outcome = _fail if trip.delivery_error else _warn
        return outcome(
            WEBHOOK_HOST,
            f"{what}, which Chatwoot {shown} refuses for webhooks unless SAFE_FETCH_ALLOW_PRIVATE_NETWORK "
            f"is true: {fix}, or give the bridge a public BRIDGE_PUBLIC_URL.",
        )

    # ------------------------------------------------------------------ 5. round trip

    async def _round_trip(self) -> RoundTrip:
        room = self.room
        if room is None:
            return RoundTrip(ran=False, problem="Not run: the connection conversation is not available.")
        started = time.monotonic()
        with self.probe.watch() as watch:
            try:
                note_id = await room.post(NOTE, private=True)
            except ChatwootError as exc:
                return RoundTrip(
                    ran=True,
                    problem="The bridge could not post its test note into the connection conversation "
                    f"({_problem(exc)}).",
                )
            except Exception as exc:  # the room is another component's: its failure is this check's
                log.exception(
                    "the self-check note could not be posted",
                    extra={"integration_id": self.target.integration_id},
                )
                return RoundTrip(
                    ran=True,
                    problem="The bridge could not post its test note into the connection conversation "
                    f"({type(exc).__name__}); see the bridge's log.",
                )
            arrived = await watch.wait_for(note_id, self.round_trip_timeout)
        if arrived:
            return RoundTrip(ran=True, arrived=True, seconds=time.monotonic() - started)
        url = self.target.public_url
        signature = self.target.webhook_error()
        if signature:
            return RoundTrip(
                ran=True,
                problem=f"Chatwoot reached BRIDGE_PUBLIC_URL ({url}), but its webhook failed the signature "
                f"check: {signature}",
            )
        delivery = await self._delivery_error(room, note_id)
        said = f' Chatwoot marked the note failed: "{delivery}".' if delivery else ""
        return RoundTrip(
            ran=True,
            delivery_error=delivery,
            problem=f"The test note's webhook did not arrive within {self.round_trip_timeout:g}s: Chatwoot "
            f"cannot reach BRIDGE_PUBLIC_URL ({url}).{said} Make that URL reachable from Chatwoot "
            "(its Sidekiq container sends the webhooks).",
        )

    async def _delivery_error(self, room: ControlRoom, note_id: int) -> str:
        """The error Chatwoot stored on the note when its webhook failed ("" when none yet)."""
        try:
            conversation = await room.conversation_id()
            found = await self.chatwoot.list_messages(conversation, after=note_id - 1)
        except ChatwootError as exc:
            log.info(
                "the self-check note could not be read back",
                extra={"integration_id": self.target.integration_id, "error": str(exc)[:200]},
            )
            return ""
        note = next((m for m in found if m.id == note_id), None)
        if note is None or note.status != "failed":
            return ""
        return str(note.content_attributes.get("external_error") or "failed")[:300]

    def _trip_result(self, trip: RoundTrip) -> CheckResult:
        if not trip.ran:
            return _warn(ROUND_TRIP, trip.problem)
        if trip.arrived:
            return _ok(
                ROUND_TRIP,
                f"Chatwoot delivered the test note's webhook to BRIDGE_PUBLIC_URL ({self.target.public_url}) "
                f"in {trip.seconds:.1f}s.",
            )
        return _fail(ROUND_TRIP, trip.problem)


def _refused_as_private(error: str) -> bool:
    """SafeFetch's refusal (``SsrfFilter::PrivateIPAddress``: "Hostname '…' has no public ip addresses")."""
    return "no public ip address" in error.lower()


def _ok(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, status=CheckOutcome.OK, message=message)


def _warn(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, status=CheckOutcome.WARN, message=message)


def _fail(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, status=CheckOutcome.FAIL, message=message)


def render(report: SelfCheckReport) -> str:
    """The report as the text posted into the connection conversation."""
    problems = sum(1 for c in report.checks if c.status is not CheckOutcome.OK)
    head = "Self-check: all good" if not problems else f"Self-check: {problems} to look at"
    lines = [f"{_ICONS[report.status]} {head}"]
    lines += [f"{_ICONS[c.status]} {TITLES.get(c.name, c.name)}: {c.message}" for c in report.checks]
    return "\n".join(lines)
