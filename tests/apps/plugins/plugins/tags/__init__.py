"""Tagging plugin: its revisions live in plugins/tags/versions, run through the app's env.py."""

from app import db

NAME = 'tags'
VERSION_TABLE = 'alembic_version_tags'
TABLES = ('tag', 'post_tag')


def include_object(object_, name, type_, reflected, compare_to):
    """Autogenerate looks at the plugin's own tables only."""
    if type_ == 'table':
        return name in TABLES
    return True


class Tag(db.Model):
    __tablename__ = 'tag'

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False, unique=True)


post_tag = db.Table(
    'post_tag',
    db.Column('post_id', db.Integer, db.ForeignKey('post.id'), primary_key=True),
    db.Column('tag_id', db.Integer, db.ForeignKey('tag.id'), primary_key=True),
)
