import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///plugins.db')
# plugins to load: names of packages under plugins/ (comma-separated)
app.config['ENABLED_PLUGINS'] = os.environ.get('ENABLED_PLUGINS', 'audit,tags')

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), nullable=False)


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(140), nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False, index=True)


from plugins import load_plugins  # noqa: E402

load_plugins(app)
