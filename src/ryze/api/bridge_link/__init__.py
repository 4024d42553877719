"""RyzeAPI's side of the bridge: the Chatwoot module's endpoints (set/list/delete, inline activation)
and the bridge's WS link (durable event log, commands).

It is named for what it talks to. RyzeAPI never talks to Chatwoot: this package talks to the bridge
(RyzeIntegrations) only, through the contract in `ryze.protocol`; the public routes keep their
documented `/api/chatwoot/*` paths.
"""
