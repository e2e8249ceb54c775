"""A small blog application (test fixture for ci-migrate)."""
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from .config import config

# Deterministic constraint names, so that migrations can drop/alter them
# (and SQLite batch mode can recreate tables).
naming_convention = {
    'ix': 'ix_%(column_0_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()


def create_app(config_name='default'):
    app = Flask(__name__)
    app.config.from_object(config[config_name])

    db.init_app(app)
    migrate.init_app(app, db)

    from . import models  # noqa: F401  (register the models with SQLAlchemy)

    @app.route('/')
    def index():
        from .models import Post
        posts = db.session.scalars(
            db.select(Post).order_by(Post.id.desc()).limit(app.config['POSTS_PER_PAGE'])
        ).all()
        return {'posts': [{'id': p.id, 'title': p.title} for p in posts]}

    return app
