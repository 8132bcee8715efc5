-- The chat's messages. client_offset is what a client names a message by when it retries:
-- UNIQUE, and case-sensitive (a binary collation), since socket ids differ in case only.
CREATE TABLE messages (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    client_offset VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    content TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY messages_client_offset (client_offset)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
