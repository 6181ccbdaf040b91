"""`python -m hashsvc` runs the command-line interface."""

from hashsvc.cli import main

main()
