"""The ``shipwatch`` command line: one small module per command."""

from detector.cli.main import main

__all__ = ["main"]
