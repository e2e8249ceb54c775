"""An app for every env.py shape: the migrations are Flask-Migrate 4.1's, env_shapes/ holds the
env.py files the tests put in their place (Flask-Migrate's templates of other versions and custom
shapes seen in public apps). Toggles, read when the app is imported:

* ``SHAPES_DRIFT=1``: ``user.bio`` is in the model but in no migration (drift).
* ``SHAPES_LEGACY=1``: a ``legacy_audit`` model the migrations never create (env_shapes/own_options.py
  leaves it out of autogenerate with its own ``include_object``).
* ``SHAPES_LOGGING=1``: the app configures logging with ``disable_existing_loggers=True``, which
  silences alembic's loggers.
"""

import logging.config
import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

if os.environ.get("SHAPES_LOGGING"):
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": True,
                               "handlers": {"console": {"class": "logging.StreamHandler"}},
                               "root": {"handlers": ["console"], "level": "WARNING"}})

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///shapes.db")
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    if os.environ.get("SHAPES_DRIFT"):
        bio = db.Column(db.String(250))


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(140), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), index=True)


if os.environ.get("SHAPES_LEGACY"):
    class LegacyAudit(db.Model):
        __tablename__ = "legacy_audit"
        id = db.Column(db.Integer, primary_key=True)
        note = db.Column(db.Text)
