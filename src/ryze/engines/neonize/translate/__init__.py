"""whatsmeow events (as neonize protobufs) → the seam's domain events. Pure functions, no I/O."""

from ryze.engines.neonize.translate.connection import translate_connection
from ryze.engines.neonize.translate.groups import group_subject, translate_group_info, translate_joined_group
from ryze.engines.neonize.translate.messages import translate_message
from ryze.engines.neonize.translate.receipts import translate_receipt

__all__ = [
    "group_subject",
    "translate_connection",
    "translate_group_info",
    "translate_joined_group",
    "translate_message",
    "translate_receipt",
]
