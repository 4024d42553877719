"""Ryze: a WhatsApp HTTP API with a Chatwoot bridge."""
