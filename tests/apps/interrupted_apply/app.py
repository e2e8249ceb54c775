import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///app.db')

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), index=True)
    profile_id = db.Column(db.Integer, db.ForeignKey('profile.id', name='fk_user_profile'))
    created_at = db.Column(db.DateTime)


class Profile(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    handle = db.Column(db.String(64), nullable=False)
    bio = db.Column(db.Text)
    website = db.Column(db.String(200), index=True)
    __table_args__ = (db.UniqueConstraint('handle', name='uq_profile_handle'),)
