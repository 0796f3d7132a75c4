-- Up Migration
-- The team result cache: an account that sends the same bytes with the same parameters again gets the
-- stored result instead of a new encode, on any replica, for --dedupe-days. Keyed by account: never shared.

CREATE TABLE result_cache (
  account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  key text NOT NULL, -- SHA-256 of the input bytes, the parameters and the engine version
  format text NOT NULL,
  width integer NOT NULL,
  height integer NOT NULL,
  original_size bigint NOT NULL,
  data bytea NOT NULL,
  webp bytea,
  expires_at bigint NOT NULL,
  PRIMARY KEY (account_id, key)
);
CREATE INDEX result_cache_expiry ON result_cache (expires_at);

-- Down Migration
DROP TABLE result_cache;
