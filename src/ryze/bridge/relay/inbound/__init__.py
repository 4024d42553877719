"""WhatsApp → Chatwoot: one consumer per event, one converter per message type, ordered chat lanes."""
