"""Chatwoot → WhatsApp: webhook filters, text formatting, and the durable job worker."""
