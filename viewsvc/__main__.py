"""``python -m viewsvc ...`` runs the ``viewsvc`` command line."""

from viewsvc.cli import main

if __name__ == "__main__":
    main()
