"""The ``viewsvc`` command (``python -m viewsvc``) and its option groups, which the example
programs reuse."""
