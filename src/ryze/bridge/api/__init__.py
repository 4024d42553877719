"""The bridge's HTTP surface: the service API (RyzeAPI calls it) and the Chatwoot webhook receiver."""
