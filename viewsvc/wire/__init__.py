"""What the smart client and the servers share, importing neither: channels to nodes, the
failover rule, read options and scan page tokens."""
