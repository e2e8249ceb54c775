"""seed default tags

Revision ID: 304ba709f5ab
Revises: 7b601d52ee62
Create Date: 2026-11-22 01:34:25.857143

"""
from alembic import op
import sqlalchemy as sa
from flask import current_app

# The starter tags are configurable per deployment (BLOG_DEFAULT_TAGS).
DEFAULT_TAGS = current_app.config.get('BLOG_DEFAULT_TAGS', ('news', 'howto', 'release'))


# revision identifiers, used by Alembic.
revision = '304ba709f5ab'
down_revision = '7b601d52ee62'
branch_labels = None
depends_on = None


tag_table = sa.table(
    'tag',
    sa.column('id', sa.Integer),
    sa.column('name', sa.String(50)),
)


def upgrade():
    op.bulk_insert(tag_table, [{'name': name} for name in DEFAULT_TAGS])


def downgrade():
    op.execute(tag_table.delete().where(tag_table.c.name.in_(list(DEFAULT_TAGS))))
