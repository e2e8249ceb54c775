"""Configuration classes for the blog application.

The database URL comes from the ``DATABASE_URL`` environment variable; without it
a SQLite file in the instance folder is used.
"""
import os


class Config:
    SECRET_KEY = os.environ.get('SECRET_KEY', 'dev-not-a-secret')
    SQLALCHEMY_DATABASE_URI = os.environ.get('DATABASE_URL', 'sqlite:///blog.db')
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    POSTS_PER_PAGE = 20
    COMMENTS_PER_PAGE = 30


class DevelopmentConfig(Config):
    DEBUG = True


class TestingConfig(Config):
    TESTING = True
    SQLALCHEMY_DATABASE_URI = os.environ.get('DATABASE_URL', 'sqlite:///blog-test.db')


class ProductionConfig(Config):
    pass


config = {
    'development': DevelopmentConfig,
    'testing': TestingConfig,
    'production': ProductionConfig,
    'default': DevelopmentConfig,
}
