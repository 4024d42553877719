"""``python -m bench.chaos`` (``make chaos``): the fault matrix of issue 15.

Real processes on loopback (RyzeAPI with the simulated engine, the bridge, the Chatwoot emulator,
plus a TCP proxy between the bridge and RyzeAPI), one configuration per storage back end, and for
each fault: messages both ways across many chats while the fault is injected and healed; then
what was sent, what arrived, what was lost, duplicated or reordered, and how long after the heal the
last message arrived. See docs/reliability.md.
"""
