"""add profiles

Revision ID: 5878fb2751bc
Revises: bcd636a358f2
Create Date: 2026-12-01 12:39:45.221686

"""
import os
import time

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5878fb2751bc'
down_revision = 'bcd636a358f2'
branch_labels = None
depends_on = None


def _interrupt(step):
    """Test hook: with INTERRUPT_APPLY_AT=<step> and INTERRUPT_APPLY_MARKER=<file>, the revision
    writes its process id to the file after its first <step> operations and sleeps, so a test can
    kill -9 the run there. Unset, or offline (flask db upgrade --sql), it does nothing."""
    if os.environ.get('INTERRUPT_APPLY_AT') != str(step) or context.is_offline_mode():
        return
    with open(os.environ['INTERRUPT_APPLY_MARKER'], 'w') as marker:
        marker.write(str(os.getpid()))
    time.sleep(float(os.environ.get('INTERRUPT_APPLY_SLEEP', '120')))


def upgrade():
    _interrupt(0)
    op.create_table('profile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handle', sa.String(length=64), nullable=False),
    sa.Column('bio', sa.Text(), nullable=True),
    sa.Column('website', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    _interrupt(1)
    op.create_index(op.f('ix_profile_website'), 'profile', ['website'], unique=False)
    _interrupt(2)
    op.create_unique_constraint('uq_profile_handle', 'profile', ['handle'])
    _interrupt(3)
    op.add_column('user', sa.Column('email', sa.String(length=120), nullable=True))
    _interrupt(4)
    op.add_column('user', sa.Column('profile_id', sa.Integer(), nullable=True))
    _interrupt(5)
    op.create_index(op.f('ix_user_email'), 'user', ['email'], unique=False)
    _interrupt(6)
    op.create_foreign_key('fk_user_profile', 'user', 'profile', ['profile_id'], ['id'])
    _interrupt(7)


def downgrade():
    op.drop_constraint('fk_user_profile', 'user', type_='foreignkey')
    op.drop_index(op.f('ix_user_email'), table_name='user')
    op.drop_column('user', 'profile_id')
    op.drop_column('user', 'email')
    op.drop_table('profile')
