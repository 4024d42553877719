"""The WebSocket link to RyzeAPI (the bridge is the client): ``client.LinkClient``."""
