import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { accountIdOf } from '../keys.ts'
import { FileBlobStore } from './files.ts'
import { scrubCredentials, scrubOutcome, withoutCredentials } from './scrub.ts'
import type {
  AccountRecord,
  ClaimedItem,
  DownloadRecord,
  ItemOutcome,
  ItemRecord,
  JobOutcome,
  JobRecord,
  NewAccount,
  Store,
} from './types.ts'
import { downloadFromRow, jobFromRow, type DownloadRow, type JobRow as JobRowOf } from './rows.ts'
import { DuplicateAccountError } from './types.ts'

const SCHEMA_VERSION = 3

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, -- SHA-256 of the API key; the key itself is never stored
  name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  tokens INTEGER NOT NULL,
  password_hash TEXT,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  status TEXT NOT NULL,
  params TEXT NOT NULL,
  inputs TEXT NOT NULL,
  reserved INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  callback_state TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS downloads (
  dir TEXT NOT NULL,
  name TEXT NOT NULL,
  blob TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  job_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (dir, name)
);
CREATE INDEX IF NOT EXISTS downloads_expiry ON downloads(expires_at);
-- The images of unfinished jobs: the scheduler's queue. job_seq is the job's rowid (submit order).
CREATE TABLE IF NOT EXISTS items (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  account_id TEXT NOT NULL,
  job_seq INTEGER NOT NULL,
  state TEXT NOT NULL,
  tries INTEGER NOT NULL DEFAULT 0,
  tag INTEGER NOT NULL DEFAULT 0,
  outcome TEXT,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS items_waiting ON items(state, tag, job_seq, idx);
-- The fair order's clock (the tag last claimed) and each account's finish tag (see Store.claimNextItem).
CREATE TABLE IF NOT EXISTS scheduler (id INTEGER PRIMARY KEY CHECK (id = 1), clock INTEGER NOT NULL);
INSERT OR IGNORE INTO scheduler (id, clock) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS fair_finish (account_id TEXT PRIMARY KEY, finish INTEGER NOT NULL);
`

/** Schema 2 → 3: the jobs a previous version left unfinished get their items; a started run counts as a try on each. */
const MIGRATE_ITEMS = `
INSERT INTO items (job_id, idx, account_id, job_seq, state, tries)
SELECT j.id, k.key, j.account_id, j.rowid, 'waiting', j.attempts
FROM jobs j, json_each(j.inputs) k WHERE j.status IN ('queued', 'running')
`

interface ItemRow {
  job_id: string
  idx: number
  state: ItemRecord['state']
  tries: number
  tag: number
  outcome: string | null
}

type JobRow = JobRowOf<string>
const toJob = (r: JobRow): JobRecord => jobFromRow(r, (text) => JSON.parse(text))
const toDownload = downloadFromRow

/**
 * better-sqlite3 is native and an optional peer dependency (a plugin user compiles nothing): it is loaded
 * only when a data dir is used, and what is wrong is said in one line, with the command that fixes it.
 */
export async function loadDatabase(load: () => Promise<{ default: typeof BetterSqlite3 }> = () => import('better-sqlite3')): Promise<typeof BetterSqlite3> {
  try {
    return (await load()).default
  } catch (error) {
    const code = (error as { code?: unknown }).code
    const missing = (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /better-sqlite3/.test((error as Error).message)
    const message = missing
      ? 'better-sqlite3 is not installed: --data-dir keeps its data in SQLite through it, an optional peer dependency. ' +
        'Install it beside unplugin-megaoptim: npm install better-sqlite3@12'
      : `better-sqlite3 is installed but its native part could not be loaded (${String((error as Error).message).split('\n')[0]}). ` +
        'Rebuild it for this Node version: npm rebuild better-sqlite3 (building from source needs python and a C++ compiler).'
    throw new Error(message, { cause: error })
  }
}

/** Opens (and creates) `<dataDir>/megaoptim.sqlite` and `<dataDir>/blobs/`. */
export async function openSqliteStore(dataDir: string): Promise<SqliteStore> {
  const Database = await loadDatabase()
  mkdirSync(dataDir, { recursive: true })
  const db = new Database(path.join(dataDir, 'megaoptim.sqlite'))
  // A file that is not a database, or a failed migration, must not leave the handle open.
  try {
    db.pragma('journal_mode = WAL')
    // `megaoptim keys create` may write while `serve` runs: wait for the lock instead of failing.
    db.pragma('busy_timeout = 5000')
    db.pragma('foreign_keys = ON')
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) {
      throw new Error(`${path.join(dataDir, 'megaoptim.sqlite')} was written by a newer version of the server (schema ${version}); upgrade unplugin-megaoptim.`)
    }
    // Schema 2 added callback_state; CREATE TABLE IF NOT EXISTS does not add columns to an old table.
    db.transaction(() => {
      if (version === 1) db.exec('ALTER TABLE jobs ADD COLUMN callback_state TEXT')
      db.exec(SCHEMA)
      if (version > 0 && version < 3) db.exec(MIGRATE_ITEMS)
      db.pragma(`user_version = ${SCHEMA_VERSION}`)
    }).immediate()
  } catch (error) {
    db.close()
    throw error
  }
  return new SqliteStore(db, new FileBlobStore(path.join(dataDir, 'blobs')))
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  readonly blobs: FileBlobStore
  readonly #db: BetterSqlite3.Database
  readonly #stmt

  constructor(db: BetterSqlite3.Database, blobs: FileBlobStore) {
    this.#db = db
    this.blobs = blobs
    this.#stmt = {
      insertAccount: db.prepare(
        'INSERT INTO accounts (id, name, email, tokens, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      getAccount: db.prepare('SELECT id, name, email, tokens, created_at FROM accounts WHERE id = ?'),
      emailTaken: db.prepare('SELECT 1 FROM accounts WHERE email = ?'),
      reserve: db.prepare('UPDATE accounts SET tokens = tokens - ? WHERE id = ? AND tokens >= ?'),
      refund: db.prepare('UPDATE accounts SET tokens = tokens + ? WHERE id = ? AND tokens >= 0'),
      insertJob: db.prepare(
        `INSERT INTO jobs (id, account_id, status, params, inputs, reserved, attempts, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getJob: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      insertItem: db.prepare(
        "INSERT INTO items (job_id, idx, account_id, job_seq, state, tag) VALUES (?, ?, ?, ?, 'waiting', ?)",
      ),
      // The job's turn: max(clock, the account's finish); the finish then moves by the number of images.
      jobTag: db.prepare(
        `SELECT MAX((SELECT clock FROM scheduler WHERE id = 1),
                    COALESCE((SELECT finish FROM fair_finish WHERE account_id = ?), 0)) AS tag`,
      ),
      setFinish: db.prepare(
        'INSERT INTO fair_finish (account_id, finish) VALUES (?, ?) ON CONFLICT (account_id) DO UPDATE SET finish = excluded.finish',
      ),
      nextItem: db.prepare(
        "SELECT job_id, idx, tries, tag FROM items WHERE state = 'waiting' ORDER BY tag, job_seq, idx LIMIT 1",
      ),
      claimItem: db.prepare("UPDATE items SET state = 'claimed' WHERE job_id = ? AND idx = ?"),
      advanceClock: db.prepare('UPDATE scheduler SET clock = MAX(clock, ?) WHERE id = 1'),
      jobRunning: db.prepare("UPDATE jobs SET status = 'running' WHERE id = ?"),
      startItem: db.prepare(
        "UPDATE items SET state = 'running', tries = tries + 1 WHERE job_id = ? AND idx = ? AND state = 'claimed' RETURNING tries",
      ),
      getItem: db.prepare('SELECT tries FROM items WHERE job_id = ? AND idx = ?'),
      completeItem: db.prepare("UPDATE items SET state = 'done', outcome = ? WHERE job_id = ? AND idx = ?"),
      notDone: db.prepare("SELECT COUNT(*) AS n FROM items WHERE job_id = ? AND state != 'done'"),
      releaseItem: db.prepare(
        `UPDATE items SET tries = CASE WHEN state = 'running' THEN MAX(0, tries - 1) ELSE tries END, state = 'waiting'
         WHERE job_id = ? AND idx = ? AND state IN ('claimed', 'running')`,
      ),
      resetItems: db.prepare("UPDATE items SET state = 'waiting' WHERE state IN ('claimed', 'running')"),
      jobItems: db.prepare('SELECT job_id, idx, state, tries, tag, outcome FROM items WHERE job_id = ? ORDER BY idx'),
      countWaiting: db.prepare("SELECT COUNT(*) AS n FROM items WHERE state = 'waiting'"),
      deleteItems: db.prepare('DELETE FROM items WHERE job_id = ?'),
      finishJob: db.prepare(
        'UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?, reserved = 0, params = ?, inputs = ?, callback_state = ? WHERE id = ?',
      ),
      settleCallback: db.prepare('UPDATE jobs SET callback_state = ? WHERE id = ?'),
      pendingCallbacks: db.prepare("SELECT * FROM jobs WHERE callback_state = 'pending' ORDER BY finished_at"),
      unfinished: db.prepare("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at"),
      insertDownload: db.prepare(
        `INSERT OR REPLACE INTO downloads (dir, name, blob, size, content_type, job_id, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      getDownload: db.prepare('SELECT * FROM downloads WHERE dir = ? AND name = ?'),
      hasDownloadDir: db.prepare('SELECT 1 FROM downloads WHERE dir = ? LIMIT 1'),
      expired: db.prepare('SELECT * FROM downloads WHERE expires_at <= ?'),
      deleteExpired: db.prepare('DELETE FROM downloads WHERE expires_at <= ?'),
      deleteOldJobs: db.prepare('DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?'),
    }
  }

  createAccount(input: NewAccount): AccountRecord {
    const createdAt = Date.now()
    const id = accountIdOf(input.apiKey)
    try {
      this.#stmt.insertAccount.run(id, input.name, input.email, input.tokens, input.passwordHash ?? null, createdAt)
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && this.#stmt.emailTaken.get(input.email)) {
        throw new DuplicateAccountError(`An account with the email ${input.email} already exists.`)
      }
      throw error
    }
    return { id, name: input.name, email: input.email, tokens: input.tokens, createdAt }
  }

  getAccount(apiKey: string): AccountRecord | undefined {
    return this.getAccountById(accountIdOf(apiKey))
  }

  getAccountById(id: string): AccountRecord | undefined {
    const row = this.#stmt.getAccount.get(id) as
      | { id: string; name: string; email: string; tokens: number; created_at: number }
      | undefined
    return row && { id: row.id, name: row.name, email: row.email, tokens: row.tokens, createdAt: row.created_at }
  }

  submitJob(job: JobRecord, reserve: number): boolean {
    // One SQLite transaction (BEGIN IMMEDIATE): the check, the debit and the insert cannot interleave
    // with another request, nor with `keys create` in another process.
    const tx = this.#db.transaction((): boolean => {
      const account = this.getAccountById(job.accountId)
      if (!account) return false
      let reserved = 0
      if (account.tokens !== -1) {
        if (this.#stmt.reserve.run(reserve, job.accountId, reserve).changes !== 1) return false
        reserved = reserve
      }
      const seq = this.#stmt.insertJob.run(
        job.id,
        job.accountId,
        job.status,
        JSON.stringify(job.params),
        JSON.stringify(job.inputs),
        reserved,
        0,
        job.createdAt,
      ).lastInsertRowid
      const { tag } = this.#stmt.jobTag.get(job.accountId) as { tag: number }
      this.#stmt.setFinish.run(job.accountId, tag + job.inputs.length)
      for (let index = 0; index < job.inputs.length; index++) this.#stmt.insertItem.run(job.id, index, job.accountId, seq, tag)
      return true
    })
    return tx.immediate()
  }

  getJob(id: string): JobRecord | undefined {
    const row = this.#stmt.getJob.get(id) as JobRow | undefined
    return row && toJob(row)
  }

  claimNextItem(): ClaimedItem | undefined {
    const tx = this.#db.transaction((): ClaimedItem | undefined => {
      const next = this.#stmt.nextItem.get() as { job_id: string; idx: number; tries: number; tag: number } | undefined
      if (!next) return undefined
      this.#stmt.claimItem.run(next.job_id, next.idx)
      this.#stmt.advanceClock.run(next.tag)
      this.#stmt.jobRunning.run(next.job_id)
      const job = this.getJob(next.job_id)!
      return { job, index: next.idx, input: job.inputs[next.idx]!, tries: next.tries }
    })
    return tx.immediate()
  }

  startItem(jobId: string, index: number): number {
    const row = (this.#stmt.startItem.get(jobId, index) ?? this.#stmt.getItem.get(jobId, index)) as { tries: number } | undefined
    return row?.tries ?? 0
  }

  completeItem(jobId: string, index: number, outcome: ItemOutcome): number {
    const tx = this.#db.transaction((): number => {
      if (this.#stmt.completeItem.run(JSON.stringify(scrubOutcome(outcome)), jobId, index).changes === 0) return -1
      return (this.#stmt.notDone.get(jobId) as { n: number }).n
    })
    return tx.immediate()
  }

  releaseItem(jobId: string, index: number): void {
    this.#stmt.releaseItem.run(jobId, index)
  }

  resetInterruptedItems(): void {
    this.#stmt.resetItems.run()
  }

  countWaitingItems(): number {
    return (this.#stmt.countWaiting.get() as { n: number }).n
  }

  jobItems(jobId: string): ItemRecord[] {
    return (this.#stmt.jobItems.all(jobId) as ItemRow[]).map((r) => ({
      jobId: r.job_id,
      index: r.idx,
      state: r.state,
      tries: r.tries,
      tag: r.tag,
      outcome: r.outcome === null ? null : (JSON.parse(r.outcome) as ItemOutcome),
    }))
  }

  finishJob(id: string, outcome: JobOutcome): void {
    const tx = this.#db.transaction(() => {
      const job = this.getJob(id)
      if (!job || job.status === 'done' || job.status === 'failed') return
      const charge = outcome.status === 'done' ? Math.min(outcome.charge, job.reserved) : 0
      if (job.reserved - charge > 0) this.#stmt.refund.run(job.reserved - charge, job.accountId)
      const scrubbed = withoutCredentials(job.params, job.inputs)
      const params = JSON.stringify(scrubbed.params)
      const inputs = JSON.stringify(scrubbed.inputs)
      const callback = job.params.callbackUrl ? 'pending' : null
      this.#stmt.deleteItems.run(id)
      if (outcome.status === 'done') {
        const result = outcome.result.map((item) => scrubOutcome({ item, downloads: [], charge: 0 }).item)
        this.#stmt.finishJob.run('done', JSON.stringify(result), null, outcome.finishedAt, params, inputs, callback, id)
        for (const d of outcome.downloads) {
          this.#stmt.insertDownload.run(d.dir, d.name, d.blob, d.size, d.contentType, d.jobId, d.expiresAt)
        }
      } else {
        this.#stmt.finishJob.run('failed', null, scrubCredentials(outcome.error), outcome.finishedAt, params, inputs, callback, id)
      }
    })
    tx.immediate()
  }

  settleCallback(id: string, state: 'delivered' | 'failed'): void {
    this.#stmt.settleCallback.run(state, id)
  }

  pendingCallbacks(): JobRecord[] {
    return (this.#stmt.pendingCallbacks.all() as JobRow[]).map(toJob)
  }

  unfinishedJobs(): JobRecord[] {
    return (this.#stmt.unfinished.all() as JobRow[]).map(toJob)
  }

  getDownload(dir: string, name: string): DownloadRecord | undefined {
    const row = this.#stmt.getDownload.get(dir, name) as DownloadRow | undefined
    return row && toDownload(row)
  }

  hasDownloadDir(dir: string): boolean {
    return this.#stmt.hasDownloadDir.get(dir) !== undefined
  }

  takeExpiredDownloads(now: number): DownloadRecord[] {
    const tx = this.#db.transaction(() => {
      const rows = (this.#stmt.expired.all(now) as DownloadRow[]).map(toDownload)
      this.#stmt.deleteExpired.run(now)
      return rows
    })
    return tx.immediate()
  }

  deleteJobsFinishedBefore(before: number): number {
    return this.#stmt.deleteOldJobs.run(before).changes
  }

  close(): void {
    if (this.#db.open) this.#db.close()
  }
}
