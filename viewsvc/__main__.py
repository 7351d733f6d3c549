"""``python -m viewsvc ...`` runs the ``viewsvc`` command line."""

from viewsvc.cli.main import main

if __name__ == "__main__":
    main()
