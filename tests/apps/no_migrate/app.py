"""A Flask + Flask-SQLAlchemy app that manages its schema with db.create_all()
and does not use Flask-Migrate at all."""
import os
from datetime import datetime, timezone

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///links.db')

db = SQLAlchemy(app)


def utcnow():
    return datetime.now(timezone.utc)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), nullable=False, unique=True)


class Link(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    url = db.Column(db.String(2048), nullable=False)
    title = db.Column(db.String(200))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    user_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False, index=True)

    user = db.relationship('User', backref=db.backref('links', lazy='dynamic'))


@app.cli.command('init-db')
def init_db_command():
    """Create the tables."""
    db.create_all()
    print('Initialized the database.')


@app.route('/')
def index():
    links = db.session.scalars(db.select(Link).order_by(Link.created_at.desc()).limit(50))
    return {'links': [{'url': link.url, 'title': link.title} for link in links]}
