-- The chat's messages. client_offset is what a client names a message by when it retries:
-- UNIQUE, and compared byte for byte (SQLite's default BINARY collation).
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_offset TEXT NOT NULL UNIQUE,
    content TEXT NOT NULL,
    username TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
