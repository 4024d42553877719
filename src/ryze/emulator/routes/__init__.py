"""REST and control routes of the emulator."""
