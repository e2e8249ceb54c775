"""``python -m ci_migrate`` runs the CLI."""

from ci_migrate.cli import main

if __name__ == "__main__":
    main()
