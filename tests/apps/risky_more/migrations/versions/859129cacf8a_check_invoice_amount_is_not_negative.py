"""check invoice.amount is not negative

Revision ID: 859129cacf8a
Revises: 2e4259fd864c
Create Date: 2026-11-22 01:53:38.317811

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '859129cacf8a'
down_revision = '2e4259fd864c'
branch_labels = None
depends_on = None


def upgrade():
    # NOT VALID: existing rows are checked later with VALIDATE CONSTRAINT, without blocking writes
    op.create_check_constraint('ck_invoice_amount_not_negative', 'invoice', 'amount >= 0',
                               postgresql_not_valid=True)


def downgrade():
    op.drop_constraint('ck_invoice_amount_not_negative', 'invoice', type_='check')
