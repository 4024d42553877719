"""`ryze demo` (the whole system on loopback with a simulated phone page) and `ryze up` (both
services in one command for a single host)."""

from __future__ import annotations

from .phone import DemoContact, PhoneChat, PhoneServer
from .runner import Demo, DemoError, DemoOptions, start_demo

__all__ = ["Demo", "DemoContact", "DemoError", "DemoOptions", "PhoneChat", "PhoneServer", "start_demo"]
