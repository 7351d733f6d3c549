"""The serving processes: the processor plugin (``ServeConfig``), the view server and the
router, and the view group's sharding."""
