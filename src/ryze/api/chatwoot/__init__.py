"""The Chatwoot module of RyzeAPI: set/list/delete, inline activation, the bridge's WS link.

RyzeAPI never talks to Chatwoot: this module talks to the bridge (RyzeIntegrations) only, through
the contract in `ryze.protocol`.
"""
