"""The interface every converter implements: a pure function of the message to an effect."""

from __future__ import annotations

from typing import Protocol

from ryze.bridge.relay.inbound.effects import Effect
from ryze.protocol import WAMessage


class Converter(Protocol):
    def convert(self, message: WAMessage) -> Effect: ...
