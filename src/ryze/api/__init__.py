"""RyzeAPI: the WhatsApp HTTP API service (`ryze api`)."""
