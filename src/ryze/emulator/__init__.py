"""Chatwoot v4.15 emulator: an in-memory stand-in for tests, the demo and benchmarks.

It follows Chatwoot's Rails code (docs/emulator.md lists each behaviour and its source), not its
OpenAPI file, and shares no code with the rest of `ryze` on purpose: it is what the
bridge is tested against.
"""

from .app import ChatwootEmulator
from .seed import EmulatorSeed, SeedAccount, SeedUser
from .server import RunningEmulator, run_emulator

__all__ = ["ChatwootEmulator", "EmulatorSeed", "RunningEmulator", "SeedAccount", "SeedUser", "run_emulator"]
