"""merge published and tag branches

Revision ID: 2ab445a1217b
Revises: 5524e11947c0, 8836950a0ea5
Create Date: 2026-11-22 01:45:02.272341

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2ab445a1217b'
down_revision = ('5524e11947c0', '8836950a0ea5')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
