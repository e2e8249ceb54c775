"""``python -m ci_migrate`` runs the CLI (``post`` without the working directory on ``sys.path``)."""

import sys

from ci_migrate.safe_path import drop_working_directory

if sys.argv[1:2] == ["post"]:  # before click and the rest are imported: see ci_migrate.safe_path
    drop_working_directory()

from ci_migrate.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
