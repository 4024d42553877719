"""The simulated WhatsApp engine: an in-process phone network for tests, the demo and benchmarks."""

from ryze.engines.simulated.engine import SimulatedEngine, SimulatedSession
from ryze.engines.simulated.traffic import GroupChange, GroupMember, Inbound, InboundMedia, normalize_jid

__all__ = [
    "GroupChange",
    "GroupMember",
    "Inbound",
    "InboundMedia",
    "SimulatedEngine",
    "SimulatedSession",
    "normalize_jid",
]
