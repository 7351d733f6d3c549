"""gRPC reads: see ``__main__``."""
