"""index invoice.currency

Revision ID: e665dbf96c9d
Revises: 859129cacf8a
Create Date: 2026-11-22 01:53:44.737983

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e665dbf96c9d'
down_revision = '859129cacf8a'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('CREATE INDEX ix_invoice_currency ON invoice (currency)')


def downgrade():
    op.execute('DROP INDEX ix_invoice_currency')
