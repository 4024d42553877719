"""whatsmeow events (as neonize protobufs) → the seam's domain events. Pure functions, no I/O."""

from ryze.engines.neonize.translate.connection import translate_connection
from ryze.engines.neonize.translate.messages import translate_message
from ryze.engines.neonize.translate.receipts import translate_receipt

__all__ = ["translate_connection", "translate_message", "translate_receipt"]
