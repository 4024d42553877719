"""What a converter produces, and the interface every converter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ryze.protocol import WAMessage


@dataclass
class ChatwootDraft:
    content: str
    content_attributes: dict[str, Any] = field(default_factory=dict)


class Converter(Protocol):
    def convert(self, message: WAMessage) -> ChatwootDraft | None: ...
