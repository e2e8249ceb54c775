-- Schema of the database as `db.create_all()` made it before the first migration
-- (860473c5a52e "add user.last_login"), i.e. the parent state of that revision.
-- Plain SQL, valid on SQLite and PostgreSQL: load it, then run `flask db upgrade`.

CREATE TABLE "user" (
    id INTEGER NOT NULL,
    username VARCHAR(64) NOT NULL,
    email VARCHAR(120) NOT NULL,
    display_name VARCHAR(100),
    PRIMARY KEY (id),
    UNIQUE (username),
    UNIQUE (email)
);

CREATE TABLE note (
    id INTEGER NOT NULL,
    title VARCHAR(200) NOT NULL,
    body TEXT,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY (user_id) REFERENCES "user" (id)
);
