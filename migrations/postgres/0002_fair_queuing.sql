-- Up Migration
-- Start-time fair queuing with jobs as the unit (see Store.claimNextItem): each job's images get a
-- tag = max(clock, the account's finish); the account's finish then moves by the number of images, and
-- the clock moves up to the tag of each image claimed. Images are claimed by (tag, submit order, position).

ALTER TABLE items ADD COLUMN tag bigint NOT NULL DEFAULT 0;
DROP INDEX items_open;
CREATE INDEX items_open ON items (tag, job_seq, idx) WHERE state <> 'done';

CREATE TABLE scheduler (
  id integer PRIMARY KEY CHECK (id = 1),
  clock bigint NOT NULL
);
INSERT INTO scheduler (id, clock) VALUES (1, 0);

CREATE TABLE fair_finish (
  account_id text PRIMARY KEY,
  finish bigint NOT NULL
);

-- Down Migration
DROP TABLE fair_finish;
DROP TABLE scheduler;
DROP INDEX items_open;
CREATE INDEX items_open ON items (job_seq, idx) WHERE state <> 'done';
ALTER TABLE items DROP COLUMN tag;
