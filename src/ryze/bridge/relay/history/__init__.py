"""WhatsApp history → Chatwoot.

History is another source of the same effects, not a pipeline of its own: RyzeAPI offers a
history sync's messages as ``message.exchange`` events flagged ``history`` (between two
``history.sync`` markers), and they go through the inbound relay's lanes, converters and executor
like live ones. This package holds what differs: the integration's window (``window``), the
import's progress and its posts in the connection conversation (``progress``), and the ``resync``
command's callable (``resync``).
"""
