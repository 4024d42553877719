"""`python -m ryze` is the `ryze` command."""

from ryze.cli import main

main()
