"""The real WhatsApp engine: whatsmeow through neonize (``WHATSAPP_ENGINE=neonize``).

Layout: ``engine`` (the ``Engine``), ``session`` (one account), ``translate/`` (whatsmeow events →
domain events, pure), ``send`` (outgoing messages, pure, and error mapping), ``executor`` (FFI
thread pool), ``pump`` (ordered per-session event queue), ``storage`` (where whatsmeow keeps keys),
``_neonize`` (the only module that imports neonize). See docs/whatsapp-engine.md.
"""

from ryze.engines.neonize.engine import NeonizeEngine
from ryze.engines.neonize.session import NeonizeSession

__all__ = ["NeonizeEngine", "NeonizeSession"]
