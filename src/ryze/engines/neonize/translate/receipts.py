"""whatsmeow ``events.Receipt`` → ``ReceiptEvent``.

neonize's encoder (``goneonize/utils/encoder.go``, ``EncodeReceipts``, krypton-byte/neonize; the
pinned 0.5.2 has the same switch) maps whatsmeow's receipt types (``types/presence.go``:
``""`` delivered, sender, retry, read, read-self, played, played-self, server-error, inactive,
peer_msg, hist_sync) onto ``Receipt.ReceiptType`` with two slips that decide what Ryze reports:

* ``server-error`` has no case, so the field stays unset (0). An unset type is therefore a server
  error, never a delivery (a real delivery, whatsmeow's ``""``, is encoded as ``DELIVERED``).
* ``played-self`` is encoded as ``SERVER_ERROR``.
"""

from __future__ import annotations

from typing import Any

from ryze.engines.base import ReceiptEvent, ReceiptKind
from ryze.engines.neonize._neonize import pb
from ryze.engines.neonize.translate.jids import jid_str, source_parties, timestamp

_R = pb.Receipt
UNSET = 0
RECEIPT_KINDS: dict[int, ReceiptKind] = {
    _R.DELIVERED: "delivered",
    _R.SENDER: "sender",
    _R.RETRY: "retry",
    _R.READ: "read",
    _R.READ_SELF: "read_self",
    _R.PLAYED: "played",
    _R.PLAYED_SELF: "played_self",  # not produced by 0.5.2 (see above); kept for a fixed encoder
    _R.SERVER_ERROR: "played_self",  # neonize's encoder: played-self → SERVER_ERROR
    UNSET: "server_error",  # neonize's encoder: server-error → no type at all
    _R.INACTIVE: "inactive",
    # PEER_MSG and HISTORY_SYNC are protocol housekeeping between our own devices: dropped.
}


def translate_receipt(event: Any) -> ReceiptEvent | None:
    kind = RECEIPT_KINDS.get(event.Type if event.HasField("Type") else UNSET)
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
