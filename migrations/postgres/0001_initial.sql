-- Up Migration
-- The server's shared state, for any number of `megaoptim serve` / `megaoptim worker` replicas.
-- Times are milliseconds since the epoch (the server's clock, as in the SQLite store), except leases,
-- which use the database's clock so that replicas with skewed clocks agree on when one expired.

CREATE TABLE accounts (
  id text PRIMARY KEY, -- SHA-256 of the API key; the key itself is never stored
  name text NOT NULL,
  email text NOT NULL,
  tokens bigint NOT NULL CHECK (tokens >= -1), -- -1 = unlimited; never below 0 otherwise
  password_hash text,
  created_at bigint NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));

CREATE TABLE jobs (
  id text PRIMARY KEY,
  seq bigserial NOT NULL, -- submit order
  account_id text NOT NULL REFERENCES accounts (id),
  status text NOT NULL,
  params jsonb NOT NULL,
  inputs jsonb NOT NULL,
  reserved bigint NOT NULL,
  result jsonb,
  error text,
  created_at bigint NOT NULL,
  finished_at bigint,
  callback_state text
);
CREATE INDEX jobs_unfinished ON jobs (seq) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_callbacks ON jobs (finished_at) WHERE callback_state = 'pending';
CREATE INDEX jobs_finished ON jobs (finished_at);

-- One row per image of an unfinished job (dropped when the job is settled).
CREATE TABLE items (
  job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx integer NOT NULL,
  account_id text NOT NULL,
  job_seq bigint NOT NULL,
  state text NOT NULL, -- waiting | claimed | running | done
  tries integer NOT NULL DEFAULT 0,
  outcome jsonb,
  lease_owner text, -- the replica working on it
  lease_until timestamptz, -- after this, another replica may take it over
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX items_open ON items (job_seq, idx) WHERE state <> 'done';
CREATE INDEX items_leases ON items (lease_owner) WHERE state IN ('claimed', 'running');

CREATE TABLE downloads (
  dir text NOT NULL,
  name text NOT NULL,
  blob text NOT NULL,
  size bigint NOT NULL,
  content_type text NOT NULL,
  job_id text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (dir, name)
);
CREATE INDEX downloads_expiry ON downloads (expires_at);

-- Uploads and results: every replica reads what any other wrote, with no shared file system.
CREATE TABLE blobs (
  key text PRIMARY KEY COLLATE "C",
  data bytea NOT NULL,
  written_at bigint NOT NULL
);

-- Fixed rate-limit windows, one row per key and endpoint.
CREATE TABLE rate_limits (
  key text PRIMARY KEY,
  window_start timestamptz NOT NULL,
  hits integer NOT NULL
);

-- Down Migration
DROP TABLE rate_limits;
DROP TABLE blobs;
DROP TABLE downloads;
DROP TABLE items;
DROP TABLE jobs;
DROP TABLE accounts;
