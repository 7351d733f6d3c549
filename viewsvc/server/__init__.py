"""What every serving node runs: the gRPC server and its servicers (table, scan, discovery),
the read decision (answer locally or forward), the local tables, security, limits and
metrics. Never imports ``viewsvc.client``."""
