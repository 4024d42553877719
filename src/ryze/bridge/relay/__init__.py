"""The two relay directions: inbound (WhatsApp → Chatwoot) and outbound (Chatwoot → WhatsApp)."""
