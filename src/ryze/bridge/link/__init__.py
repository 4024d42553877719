"""The WebSocket link to RyzeAPI (the bridge is the client) and the per-integration runtimes."""
