"""The `streamlearn` command line: one module per verb, loaded when the verb runs."""

from streamlearn.cli.app import app, main

__all__ = ["app", "main"]
