"""Small infrastructure pieces both services use (crypto, logging, database set-up).

Nothing here knows about WhatsApp, Chatwoot or the bridge contract: the two services meet only
at `ryze.protocol`.
"""
