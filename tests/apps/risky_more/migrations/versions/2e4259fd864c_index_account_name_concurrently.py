"""index account.name concurrently

Revision ID: 2e4259fd864c
Revises: 2c26a3e4ade4
Create Date: 2026-11-22 01:53:29.186296

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2e4259fd864c'
down_revision = '2c26a3e4ade4'
branch_labels = None
depends_on = None


def upgrade():
    # CREATE INDEX CONCURRENTLY cannot run inside the migration's transaction
    with op.get_context().autocommit_block():
        op.create_index('ix_account_name', 'account', ['name'], unique=False, postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_account_name', table_name='account', postgresql_concurrently=True)
