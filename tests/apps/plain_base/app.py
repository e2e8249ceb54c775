"""A Flask app without Flask-SQLAlchemy: a plain SQLAlchemy declarative base, the app's own engine
and session, and ``Migrate(app, Base)``. Its env.py is Flask-Migrate 2.0's template (an engine from
alembic's ``sqlalchemy.url``, set from the app's config). ``PLAIN_DRIFT=1`` adds ``note.pinned`` to
the model without a migration."""

import os

from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import Boolean, Column, Integer, String, Text, create_engine
from sqlalchemy.orm import declarative_base, scoped_session, sessionmaker

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///plain.db")
engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
session = scoped_session(sessionmaker(bind=engine))
Base = declarative_base()


class Note(Base):
    __tablename__ = "note"
    id = Column(Integer, primary_key=True)
    title = Column(String(120), nullable=False)
    body = Column(Text)
    if os.environ.get("PLAIN_DRIFT"):
        pinned = Column(Boolean)


migrate = Migrate(app, Base)


@app.teardown_appcontext
def remove_session(exception=None):
    session.remove()
