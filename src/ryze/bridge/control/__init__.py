"""The integration's control room in Chatwoot: the connection conversation, its commands, the self-check."""
