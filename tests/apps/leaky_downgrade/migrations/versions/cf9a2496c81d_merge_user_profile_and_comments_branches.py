"""merge user profile and comments branches

Revision ID: cf9a2496c81d
Revises: 01eea05c8f73, 71840c016bb9
Create Date: 2026-11-22 01:45:39.847070

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cf9a2496c81d'
down_revision = ('01eea05c8f73', '71840c016bb9')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
