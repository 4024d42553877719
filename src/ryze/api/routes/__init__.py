"""HTTP routes of RyzeAPI's public API."""
