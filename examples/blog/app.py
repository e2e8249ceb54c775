"""A small blog, the example project for ci-migrate.

Run it with:

    pip install -r requirements.txt
    export DATABASE_URL=sqlite:////tmp/blog.db   # or postgresql+psycopg://...
    flask db upgrade
    flask run
"""
import os
from datetime import datetime, timezone

from flask import Flask, abort
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = os.environ.get('DATABASE_URL', 'sqlite:///blog.db')

# name constraints predictably, so migrations can drop or alter them later
db = SQLAlchemy(metadata=MetaData(naming_convention={
    'ix': 'ix_%(column_0_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}))
db.init_app(app)
migrate = Migrate(app, db)


def utcnow():
    return datetime.now(timezone.utc)


post_tags = db.Table(
    'post_tags',
    db.Column('post_id', db.Integer, db.ForeignKey('post.id', ondelete='CASCADE'), primary_key=True),
    db.Column('tag_id', db.Integer, db.ForeignKey('tag.id', ondelete='CASCADE'), primary_key=True),
)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    email = db.Column(db.String(120), nullable=False, unique=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    body = db.Column(db.Text, nullable=False)
    published_at = db.Column(db.DateTime, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    author_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False, index=True)

    author = db.relationship('User', backref=db.backref('posts', lazy='dynamic'))
    tags = db.relationship('Tag', secondary=post_tags, backref='posts')


class Tag(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False, unique=True)


class Comment(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.String(2000), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    post_id = db.Column(db.Integer, db.ForeignKey('post.id'), nullable=False, index=True)
    author_id = db.Column(db.Integer, db.ForeignKey('user.id'), nullable=False)

    post = db.relationship('Post', backref=db.backref('comments', lazy='dynamic'))
    author = db.relationship('User')


@app.route('/')
def index():
    posts = db.session.scalars(
        db.select(Post).where(Post.published_at.is_not(None))
        .order_by(Post.published_at.desc()).limit(20)
    )
    return {'posts': [{'id': p.id, 'title': p.title} for p in posts]}


@app.route('/posts/<int:post_id>')
def show_post(post_id):
    post = db.session.get(Post, post_id) or abort(404)
    return {
        'title': post.title,
        'body': post.body,
        'author': post.author.username,
        'tags': [t.name for t in post.tags],
        'comments': [c.body for c in post.comments],
    }
