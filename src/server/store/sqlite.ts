import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { accountIdOf } from '../keys.ts'
import { FileBlobStore } from './files.ts'
import { withoutCredentials } from './scrub.ts'
import type {
  AccountRecord,
  DownloadRecord,
  JobOutcome,
  JobRecord,
  NewAccount,
  ResultItem,
  Store,
} from './types.ts'
import { DuplicateAccountError } from './types.ts'

const SCHEMA_VERSION = 2

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
`

interface JobRow {
  id: string
  account_id: string
  status: JobRecord['status']
  params: string
  inputs: string
  reserved: number
  attempts: number
  result: string | null
  error: string | null
  created_at: number
  finished_at: number | null
  callback_state: JobRecord['callbackState']
}

interface DownloadRow {
  dir: string
  name: string
  blob: string
  size: number
  content_type: string
  job_id: string
  expires_at: number
}

const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  accountId: r.account_id,
  status: r.status,
  params: JSON.parse(r.params) as JobRecord['params'],
  inputs: JSON.parse(r.inputs) as JobRecord['inputs'],
  reserved: r.reserved,
  attempts: r.attempts,
  result: r.result === null ? null : (JSON.parse(r.result) as ResultItem[]),
  error: r.error,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
  callbackState: r.callback_state,
})

const toDownload = (r: DownloadRow): DownloadRecord => ({
  dir: r.dir,
  name: r.name,
  blob: r.blob,
  size: r.size,
  contentType: r.content_type,
  jobId: r.job_id,
  expiresAt: r.expires_at,
})

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
    if (version === 1) db.exec('ALTER TABLE jobs ADD COLUMN callback_state TEXT')
    db.exec(SCHEMA)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
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
      startJob: db.prepare(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE id = ? AND status IN ('queued', 'running')",
      ),
      requeueJob: db.prepare(
        "UPDATE jobs SET status = 'queued', attempts = MAX(0, attempts - 1) WHERE id = ? AND status = 'running'",
      ),
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
      this.#stmt.insertJob.run(
        job.id,
        job.accountId,
        job.status,
        JSON.stringify(job.params),
        JSON.stringify(job.inputs),
        reserved,
        job.attempts,
        job.createdAt,
      )
      return true
    })
    return tx.immediate()
  }

  getJob(id: string): JobRecord | undefined {
    const row = this.#stmt.getJob.get(id) as JobRow | undefined
    return row && toJob(row)
  }

  startJob(id: string): JobRecord | undefined {
    this.#stmt.startJob.run(id)
    return this.getJob(id)
  }

  requeueJob(id: string): void {
    this.#stmt.requeueJob.run(id)
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
      if (outcome.status === 'done') {
        this.#stmt.finishJob.run('done', JSON.stringify(outcome.result), null, outcome.finishedAt, params, inputs, callback, id)
        for (const d of outcome.downloads) {
          this.#stmt.insertDownload.run(d.dir, d.name, d.blob, d.size, d.contentType, d.jobId, d.expiresAt)
        }
      } else {
        this.#stmt.finishJob.run('failed', null, outcome.error, outcome.finishedAt, params, inputs, callback, id)
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
