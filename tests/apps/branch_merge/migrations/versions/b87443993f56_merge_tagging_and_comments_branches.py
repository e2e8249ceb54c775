"""merge tagging and comments branches

Revision ID: b87443993f56
Revises: 304ba709f5ab, aa384893ae0d
Create Date: 2026-11-22 01:34:55.933134

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b87443993f56'
down_revision = ('304ba709f5ab', 'aa384893ae0d')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
