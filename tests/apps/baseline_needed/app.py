import os
from datetime import datetime, timezone

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate, stamp

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///notes.db')

db = SQLAlchemy(app)
migrate = Migrate(app, db)


def utcnow():
    return datetime.now(timezone.utc)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), nullable=False, unique=True)
    display_name = db.Column(db.String(100))
    last_login = db.Column(db.DateTime)


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    body = db.Column(db.Text)
    created_at = db.Column(db.DateTime, default=utcnow)
    pinned = db.Column(db.Boolean, nullable=False, default=False)
    user_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False, index=True)

    user = db.relationship('User', backref=db.backref('notes', lazy='dynamic'))


@app.cli.command('init-db')
def init_db_command():
    """Create all tables from the models and mark the database as up to date."""
    db.create_all()
    stamp()
    print('Initialized the database.')
