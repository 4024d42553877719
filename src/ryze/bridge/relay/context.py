"""What the relay of one integration works with: narrow collaborators, not the runtime.

The inbound relay and the outbound worker get a :class:`RelayContext` (and their direction's own
collaborators: lanes, resolver, link) from the integration runtime that builds them. Nothing here
imports ``ryze.bridge.runtime``, so either direction can be built, and unit-tested, from parts: an
in-memory :class:`~ryze.chatwoot.port.ChatwootPort`, a test database's repositories, a fake link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ryze.bridge.health import IntegrationHealth
from ryze.bridge.metrics import BridgeMetrics
from ryze.bridge.retry import RetryPolicy
from ryze.bridge.store.repositories import IntegrationRecord, MessageMapRepository, OutboundRepository
from ryze.chatwoot.port import ChatwootPort
from ryze.protocol import CommandFrame, ResultFrame


class CommandLink(Protocol):
    """The link to RyzeAPI as the outbound worker uses it (``ryze.bridge.link.client.LinkClient``)."""

    @property
    def connected(self) -> bool: ...

    @property
    def marks_read_on_send(self) -> bool: ...  # a send may carry its reply's read marks (markRead)

    async def command(self, frame: CommandFrame, *, budget: float) -> ResultFrame: ...


@dataclass(frozen=True, slots=True)
class RelayContext:
    integration_id: str
    # The integration's row, shared with its runtime (flags read per message: ignore_groups,
    # sign_messages; a second ``set`` builds a new runtime with the new row).
    record: IntegrationRecord
    messages: MessageMapRepository
    jobs: OutboundRepository
    chatwoot: Callable[[], ChatwootPort]
    health: IntegrationHealth
    metrics: BridgeMetrics
    retry: RetryPolicy
