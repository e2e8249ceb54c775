"""A notes app on Alchemical (Flask-Migrate's other supported database extension)."""
import os
from datetime import datetime

import sqlalchemy as sa
from alchemical.flask import Alchemical
from flask import Flask
from flask_migrate import Migrate
from sqlalchemy.orm import Mapped, mapped_column

db = Alchemical()
migrate = Migrate()


class Author(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)


class Note(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey('author.id'), index=True)
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=datetime.utcnow)


def create_app():
    app = Flask(__name__)
    app.config['ALCHEMICAL_DATABASE_URL'] = os.environ.get('DATABASE_URL', 'sqlite:///notes.db')
    db.init_app(app)
    migrate.init_app(app, db)
    return app
