"""Ryze benchmark suite: ``python -m bench`` (or ``make bench``).

Measures the relay end to end on loopback (RyzeAPI with the simulated engine → bridge → Chatwoot
emulator and back), always next to the ceiling measured in the same run, so ratios hold on a noisy
machine. See ``docs/performance.md``.
"""
