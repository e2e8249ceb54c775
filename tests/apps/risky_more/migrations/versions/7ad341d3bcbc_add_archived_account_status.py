"""add archived account status

Revision ID: 7ad341d3bcbc
Revises: 166c3aafa700
Create Date: 2026-11-22 01:52:46.605680

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7ad341d3bcbc'
down_revision = '166c3aafa700'
branch_labels = None
depends_on = None


OLD_STATUS = sa.Enum('active', 'disabled', name='account_status')
NEW_STATUS = sa.Enum('active', 'disabled', 'archived', name='account_status')


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        op.execute("ALTER TYPE account_status ADD VALUE 'archived'")
    else:
        with op.batch_alter_table('account', schema=None) as batch_op:
            batch_op.alter_column('status', existing_type=OLD_STATUS, type_=NEW_STATUS,
                                  existing_nullable=False, existing_server_default='active')


def downgrade():
    # PostgreSQL cannot drop a value from an enum type; 'archived' stays there
    if op.get_context().dialect.name != 'postgresql':
        with op.batch_alter_table('account', schema=None) as batch_op:
            batch_op.alter_column('status', existing_type=NEW_STATUS, type_=OLD_STATUS,
                                  existing_nullable=False, existing_server_default='active')
