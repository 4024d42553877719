"""whatsmeow ``events.Receipt`` → ``ReceiptEvent``."""

from __future__ import annotations

from typing import Any

from ryze.engines.base import ReceiptEvent, ReceiptKind
from ryze.engines.neonize._neonize import pb
from ryze.engines.neonize.translate.jids import jid_str, source_parties, timestamp

_R = pb.Receipt
RECEIPT_KINDS: dict[int, ReceiptKind] = {
    _R.DELIVERED: "delivered",
    _R.SENDER: "sender",
    _R.RETRY: "retry",
    _R.READ: "read",
    _R.READ_SELF: "read_self",
    _R.PLAYED: "played",
    _R.PLAYED_SELF: "played_self",
    _R.SERVER_ERROR: "server_error",
    _R.INACTIVE: "inactive",
    # PEER_MSG and HISTORY_SYNC are protocol housekeeping between our own devices: dropped.
}


def translate_receipt(event: Any) -> ReceiptEvent | None:
    # whatsmeow's empty receipt type ("") is a delivery receipt; neonize encodes it as DELIVERED,
    # but an unset field (0) means the same thing.
    kind = RECEIPT_KINDS.get(event.Type or _R.DELIVERED)
    if kind is None or not event.MessageIDs or not jid_str(event.MessageSource.Chat):
        return None
    chat, sender = source_parties(event.MessageSource)
    return ReceiptEvent(
        chat=chat,
        sender=sender,
        message_ids=tuple(event.MessageIDs),
        kind=kind,
        timestamp=timestamp(event.Timestamp),
    )
