"""Audit trail plugin: its migrations live in plugins/audit/migrations (own env.py)."""

from datetime import datetime, timezone

from app import db

NAME = 'audit'


def utcnow():
    return datetime.now(timezone.utc)


class AuditEntry(db.Model):
    __tablename__ = 'audit_entry'

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False)
    action = db.Column(db.String(64), nullable=False)
    ip_address = db.Column(db.String(45))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
