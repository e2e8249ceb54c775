"""rename tag to label and account.notes to remarks

Revision ID: 1ba51d97f874
Revises: 2fa5c85aea0a
Create Date: 2026-11-22 01:51:50.449282

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '1ba51d97f874'
down_revision = '2fa5c85aea0a'
branch_labels = None
depends_on = None


def upgrade():
    # ci-migrate: ignore[CM503] label is only read by the nightly export job, which is deployed with this
    op.rename_table('tag', 'label')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.alter_column('notes', new_column_name='remarks', existing_type=sa.Text())


def downgrade():
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.alter_column('remarks', new_column_name='notes', existing_type=sa.Text())
    op.rename_table('label', 'tag')
