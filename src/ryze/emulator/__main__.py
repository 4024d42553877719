"""`python -m ryze.emulator`: run the emulator (same flags as `ryze chatwoot-emulator`)."""

from .server import main

main()
