"""WhatsApp engines behind one seam (`ryze.engines.base`): `simulated` and `neonize`.

Engines know nothing of Chatwoot or the bridge: they turn WhatsApp traffic into domain events and
carry out sends. RyzeAPI picks one with ``WHATSAPP_ENGINE``.
"""
