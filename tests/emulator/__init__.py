"""Tests of the Chatwoot emulator (ryze.emulator)."""
