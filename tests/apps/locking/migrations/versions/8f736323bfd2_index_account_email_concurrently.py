"""index account.email concurrently

Revision ID: 8f736323bfd2
Revises: c9d6e2d3182d
Create Date: 2026-11-22 01:43:45.500115

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8f736323bfd2'
down_revision = 'c9d6e2d3182d'
branch_labels = None
depends_on = None


def upgrade():
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction block
    with op.get_context().autocommit_block():
        op.create_index(op.f('ix_account_email'), 'account', ['email'], unique=False,
                        postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index(op.f('ix_account_email'), table_name='account', postgresql_concurrently=True)
