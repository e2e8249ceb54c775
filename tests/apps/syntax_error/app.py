import os
from datetime import datetime, timezone

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///app.db')

db = SQLAlchemy(app)
migrate = Migrate(app, db)


def utcnow():
    return datetime.now(timezone.utc)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), nullable=False, unique=True)
    is_admin = db.Column(db.Boolean, nullable=False, default=False)


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(140), nullable=False)
    body = db.Column(db.Text, nullable=False)
    slug = db.Column(db.String(160), nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    author_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False, index=True)

    author = db.relationship('User', backref=db.backref('posts', lazy='dynamic'))
