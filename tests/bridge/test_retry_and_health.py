"""The shared retry policy (``ryze.bridge.retry``), the integration-health object, and the rule that
the relay and metrics never reach back into the runtime."""

from __future__ import annotations

import ast
from pathlib import Path

from ryze.bridge.errors import IntegrationBlocked
from ryze.bridge.health import IntegrationHealth
from ryze.bridge.retry import AMBIGUOUS, Failure, RetryPolicy, classify
from ryze.chatwoot import (
    ChatwootAuthError,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootServerError,
    ChatwootTimeout,
    ChatwootUnreachable,
    ChatwootValidationError,
)
from ryze.protocol import IntegrationStatus

E = "POST /x"
SRC = Path(__file__).resolve().parents[2] / "src" / "ryze" / "bridge"


def test_classify_follows_the_chatwoot_client_classification() -> None:
    assert classify(IntegrationBlocked("inbox gone")) is Failure.BLOCKED
    assert classify(ChatwootAuthError(401, "", endpoint=E)) is Failure.AUTH
    assert classify(ChatwootNotFound(404, "", endpoint=E)) is Failure.NOT_FOUND
    assert classify(ChatwootRateLimited(429, "", endpoint=E, retry_after=2)) is Failure.THROTTLED
    for transient in (
        ChatwootServerError(502, "", endpoint=E),
        ChatwootTimeout("late", endpoint=E),
        ChatwootUnreachable("down", endpoint=E),
    ):
        assert classify(transient) is Failure.TRANSIENT
    assert classify(ChatwootValidationError(422, "", endpoint=E)) is Failure.REFUSED
    assert classify(ChatwootError("unreadable answer", endpoint=E)) is Failure.REFUSED
    assert classify(KeyError("bug")) is Failure.UNEXPECTED
    assert AMBIGUOUS == {Failure.TRANSIENT, Failure.UNEXPECTED}


def test_weights_count_only_while_chatwoot_is_otherwise_working() -> None:
    weight = RetryPolicy.weight
    assert weight(Failure.BLOCKED, progressing=True) == weight(Failure.AUTH, progressing=True) == 0
    assert (
        weight(Failure.TRANSIENT, progressing=False) == weight(Failure.THROTTLED, progressing=False) == 0.25
    )
    assert weight(Failure.TRANSIENT, progressing=True) == 1
    assert weight(Failure.REFUSED, progressing=False) == weight(Failure.UNEXPECTED, progressing=False) == 1


def test_delays_respect_retry_after_and_wait_longer_for_a_refused_integration() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=1000.0, max_attempts=3)
    assert policy.delay(Failure.THROTTLED, 0, ChatwootRateLimited(429, "", endpoint=E, retry_after=7)) == 7
    assert 0.5 <= policy.delay(Failure.TRANSIENT, 0) <= 1.0
    assert policy.delay(Failure.BLOCKED, 0) <= 8.0  # three steps further: up to base * 2**3
    assert max(policy.delay(Failure.AUTH, 0) for _ in range(200)) > 1.0
    assert not policy.exhausted(2.75) and policy.exhausted(3)


async def test_health_status_rules() -> None:
    paused, connected, changes = [False], [False], []

    async def changed() -> None:
        changes.append(1)

    health = IntegrationHealth(
        inbox_id=1,
        chatwoot=lambda: None,  # type: ignore[arg-type,return-value]  # never called here
        operator_paused=lambda: paused[0],
        link_connected=lambda: connected[0],
        on_change=changed,
    )
    assert health.status() == (IntegrationStatus.PAUSED, "link to RyzeAPI not connected yet")
    await health.set_link_state(False, "integration deleted", True)
    assert health.status() == (IntegrationStatus.ERROR, "integration deleted")
    connected[0] = True
    await health.set_link_state(True, "", False)
    assert health.status() == (IntegrationStatus.ACTIVE, "")
    await health.set_whatsapp_state("disconnected", None)
    assert health.status() == (IntegrationStatus.PAUSED, "WhatsApp instance is disconnected")
    await health.report_chatwoot_error(ChatwootAuthError(401, "bad token", endpoint=E))
    status, error = health.status()
    assert status is IntegrationStatus.ERROR and "rejected the API token" in error
    paused[0] = True
    assert health.status() == (IntegrationStatus.PAUSED, "paused by the operator")
    assert len(changes) == 4


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # every import, TYPE_CHECKING ones included
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_relay_metrics_and_health_never_import_the_runtime() -> None:
    files = [*sorted((SRC / "relay").rglob("*.py")), SRC / "metrics.py", SRC / "health.py", SRC / "retry.py"]
    assert len(files) > 8
    offenders = [str(f.relative_to(SRC)) for f in files if "ryze.bridge.runtime" in _imports(f)]
    assert offenders == []
