import os
from datetime import datetime, timezone

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///app.db')
app.config['SQLALCHEMY_BINDS'] = {
    'audit': os.environ.get('AUDIT_DATABASE_URL', 'sqlite:///audit.db'),
}

db = SQLAlchemy(app)
migrate = Migrate(app, db)


def utcnow():
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- default bind

class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), nullable=False, unique=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_login_at = db.Column(db.DateTime)


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(140), nullable=False)
    body = db.Column(db.Text, nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    author = db.relationship('User', backref=db.backref('posts', lazy='dynamic'))


# ---------------------------------------------------------------- 'audit' bind

class AuditLog(db.Model):
    __bind_key__ = 'audit'
    __tablename__ = 'audit_log'

    id = db.Column(db.Integer, primary_key=True)
    # no FK: user lives in the other database
    user_id = db.Column(db.Integer, nullable=True)
    action = db.Column(db.String(50), nullable=False)
    target = db.Column(db.String(200))
    ip_address = db.Column(db.String(45))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)


class LoginEvent(db.Model):
    __bind_key__ = 'audit'
    __tablename__ = 'login_event'

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, nullable=False, index=True)
    ip_address = db.Column(db.String(45))
    user_agent = db.Column(db.String(255))
    succeeded = db.Column(db.Boolean, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
