import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'postgresql://postgres@localhost/ledger')

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Account(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), nullable=False, index=True)
    balance = db.Column(db.BigInteger, nullable=False, server_default='0')
    opened_at = db.Column(db.DateTime, nullable=False, server_default=db.text('clock_timestamp()'))
    nickname = db.Column(db.String(64))


class Event(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    account_id = db.Column(db.Integer, db.ForeignKey('account.id'), nullable=False)
    kind = db.Column(db.String(32), nullable=False, index=True)
    payload = db.Column(db.Text)


class Statement(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    account_id = db.Column(db.Integer, db.ForeignKey('account.id'), nullable=False, index=True)
    period = db.Column(db.String(7), nullable=False)
    total = db.Column(db.BigInteger, nullable=False)
