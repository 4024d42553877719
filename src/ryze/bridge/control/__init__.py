"""The connection conversation: the integration's control room inside Chatwoot."""
