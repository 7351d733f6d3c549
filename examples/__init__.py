"""Runnable examples of goka (run them with ``python -m examples.<name>``)."""
