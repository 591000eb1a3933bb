-- Personal API tokens may expire, and their owners want to see which ones are still in
-- use before revoking them.
ALTER TABLE api_keys
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz;
-- A user's tokens are listed by user; the index also serves the cascade when a user is
-- deleted.
CREATE INDEX api_keys_user ON api_keys (user_id, created_at) WHERE user_id IS NOT NULL;
