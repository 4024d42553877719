"""RyzeAPI's services: the logic behind the routes, shared with the Chatwoot module."""
