"""RyzeIntegrations: the bridge between RyzeAPI (WhatsApp) and Chatwoot."""
