# env.py that makes its engine from the app's own settings (its config), not from Flask-SQLAlchemy.
from alembic import context
from flask import current_app
from sqlalchemy import create_engine

config = context.config
target_metadata = current_app.extensions["migrate"].db.metadata
settings = current_app.config


def run_migrations_offline():
    context.configure(url=settings["SQLALCHEMY_DATABASE_URI"], target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = create_engine(settings["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                          render_as_batch=True)
        context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
