import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///billing.db')

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Account(db.Model):
    __table_args__ = (db.UniqueConstraint('email', name='uq_account_email'),)

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False, index=True)
    email = db.Column(db.String(120), nullable=False)
    status = db.Column(db.Enum('active', 'disabled', 'archived', name='account_status'), nullable=False,
                       server_default='active')
    legacy_code = db.Column(db.String(8))
    remarks = db.Column(db.Text)


class Invoice(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    account_id = db.Column(db.Integer, db.ForeignKey('account.id'), nullable=False)
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), index=True)
    public_id = db.Column(db.String(36), nullable=False, server_default=db.text('gen_random_uuid()'))


class Label(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)
