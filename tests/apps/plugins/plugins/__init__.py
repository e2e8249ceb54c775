"""The app's plugins and their migrations.

Each plugin keeps its own Alembic history, recorded in a version table of its own, and is
upgraded after the app's own history (`flask db upgrade`, then `flask plugins upgrade`):

* a plugin with a `migrations/` directory made by `flask db init -d plugins/<name>/migrations`
  runs through its own env.py, which sets its version table;
* a plugin with only a `versions/` directory runs through the app's env.py, with the plugin's
  version table (and an include_object for its own tables) passed to `context.configure()`
  through the Migrate extension's configure arguments.
"""

import contextlib
import importlib
import os

import click
import flask_migrate
from flask import current_app
from flask.cli import AppGroup

HERE = os.path.dirname(os.path.abspath(__file__))

plugins_cli = AppGroup('plugins', help='Migrations of the enabled plugins.')
_running = {}  # the plugin whose versions/ directory the app's env.py runs now


def load_plugins(app):
    names = [n.strip() for n in app.config['ENABLED_PLUGINS'].split(',') if n.strip()]
    app.extensions['plugins'] = [importlib.import_module(f'plugins.{name}') for name in names]
    app.cli.add_command(plugins_cli)
    app.extensions['migrate'].migrate.configure(_version_locations)


def _version_locations(config):
    plugin = _running.get('plugin')
    if plugin is not None:
        config.set_main_option('version_locations', _versions_dir(plugin))
    return config


def _migrations_dir(plugin):
    return os.path.join(HERE, plugin.NAME, 'migrations')


def _versions_dir(plugin):
    return os.path.join(HERE, plugin.NAME, 'versions')


@contextlib.contextmanager
def _through_app_env(plugin):
    """Run the plugin's versions/ through the app's env.py with its own version table."""
    args = current_app.extensions['migrate'].configure_args
    saved = dict(args)
    args['version_table'] = plugin.VERSION_TABLE
    args['include_object'] = plugin.include_object
    _running['plugin'] = plugin
    try:
        yield
    finally:
        _running.clear()
        args.clear()
        args.update(saved)


def _plugin(name):
    for plugin in current_app.extensions['plugins']:
        if plugin.NAME == name:
            return plugin
    raise click.UsageError(f'no enabled plugin {name!r}')


@plugins_cli.command('upgrade')
def upgrade():
    """Upgrade every enabled plugin to its head (after `flask db upgrade`)."""
    for plugin in current_app.extensions['plugins']:
        if os.path.isdir(_migrations_dir(plugin)):
            flask_migrate.upgrade(directory=_migrations_dir(plugin))
        else:
            with _through_app_env(plugin):
                flask_migrate.upgrade()


@plugins_cli.command('migrate')
@click.argument('name')
@click.option('-m', '--message', required=True)
def migrate(name, message):
    """Autogenerate a revision of one plugin."""
    plugin = _plugin(name)
    if os.path.isdir(_migrations_dir(plugin)):
        flask_migrate.migrate(directory=_migrations_dir(plugin), message=message)
    else:
        with _through_app_env(plugin):
            flask_migrate.migrate(message=message)
