"""The rule pages, installed as the ``ci_migrate.rules`` package (see setup.py): one ``<id>.md`` each."""
