import { randomBytes } from 'node:crypto'
import type Pg from 'pg'
import type { EngineResult } from '../../../engine/types.ts'
import { accountIdOf } from '../../keys.ts'
import { serverLog } from '../../log.ts'
import { scrubCredentials, scrubOutcome, withoutCredentials } from '../scrub.ts'
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
  StoreEvents,
} from '../types.ts'
import { downloadFromRow, jobFromRow, type DownloadRow, type JobRow as JobRowOf } from '../rows.ts'
import { DuplicateAccountError } from '../types.ts'
import { PostgresBlobStore } from './blobs.ts'
import { loadPg, migrate, numericTypes } from './connect.ts'
import { redactUrl } from './redact.ts'

/** The one LISTEN/NOTIFY channel: `work` (an image may be claimed) or `done:<job id>`. */
const CHANNEL = 'megaoptim'

export interface PostgresStoreOptions {
  /** `postgres://USER@HOST:PORT/DB` */
  url: string
  /**
   * How long a replica's claim on an image lasts without being renewed. A live replica renews its leases
   * every third of this; a dead one's expire and another replica takes the images over. @default 30_000
   */
  leaseMs?: number
  /** Connections per replica. @default 10 */
  poolSize?: number
}

type JobRow = JobRowOf<unknown>
const toJob = (r: JobRow): JobRecord => jobFromRow(r, (value) => value)
const toDownload = downloadFromRow

/**
 * The shared store of a fleet of replicas. Every method is one statement or one transaction, so that
 * the invariants hold whichever replica runs it: tokens are spent by a conditional UPDATE on the
 * account's row (never below zero, also guarded by a CHECK); images are claimed with
 * `FOR UPDATE SKIP LOCKED` under a lease this replica renews while it works; a job is settled (charged)
 * by whoever locks its row first while it is still unfinished, so no image is charged twice.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres'
  readonly blobs: PostgresBlobStore
  /** This replica's name on the leases it holds. */
  readonly owner = randomBytes(8).toString('hex')
  readonly #pool: Pg.Pool
  #listener: Pg.Client
  readonly #connectListener: () => Promise<Pg.Client>
  readonly #leaseMs: number
  readonly #watchers = new Set<StoreEvents>()
  readonly #heartbeat: NodeJS.Timeout
  #closed = false

  constructor(pool: Pg.Pool, listener: Pg.Client, connectListener: () => Promise<Pg.Client>, leaseMs: number) {
    this.#pool = pool
    this.#listener = listener
    this.#connectListener = connectListener
    this.#leaseMs = leaseMs
    this.blobs = new PostgresBlobStore(pool)
    this.#attach(listener)
    this.#heartbeat = setInterval(() => void this.#beat(), Math.max(50, Math.floor(leaseMs / 3)))
    this.#heartbeat.unref()
  }

  #attach(listener: Pg.Client): void {
    listener.on('notification', (n) => {
      if (n.channel !== CHANNEL || !n.payload) return
      for (const w of [...this.#watchers]) {
        if (n.payload === 'work') w.workQueued()
        else if (n.payload.startsWith('done:')) w.jobFinished(n.payload.slice(5))
      }
    })
    // A dropped LISTEN connection (a database restart, a proxy timeout) is opened again.
    listener.once('end', () => void this.#relisten())
  }

  async #relisten(): Promise<void> {
    while (!this.#closed) {
      await new Promise((r) => setTimeout(r, 500))
      if (this.#closed) return
      try {
        const listener = await this.#connectListener()
        if (this.#closed) {
          await listener.end().catch(() => {})
          return
        }
        this.#listener = listener
        this.#attach(listener)
        // Work queued while nobody listened is found by looking.
        for (const w of [...this.#watchers]) w.workQueued()
        return
      } catch (error) {
        serverLog(`PostgreSQL LISTEN connection: ${(error as Error).message}; trying again`)
      }
    }
  }

  /**
   * Renews this replica's leases, and wakes the local workers when another replica's leases have
   * expired (it died): nobody NOTIFYs for a dead replica, so the survivors look for themselves.
   */
  async #beat(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#pool.query(
        `UPDATE items SET lease_until = now() + $2 * interval '1 millisecond'
         WHERE lease_owner = $1 AND state IN ('claimed', 'running')`,
        [this.owner, this.#leaseMs],
      )
      if (this.#watchers.size === 0) return
      const { rows } = await this.#pool.query<{ stale: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM items WHERE state IN ('claimed', 'running') AND lease_until <= now()) AS stale`,
      )
      if (rows[0]?.stale) for (const w of [...this.#watchers]) w.workQueued()
    } catch (error) {
      if (!this.#closed) serverLog(`renewing the image leases failed: ${(error as Error).message}`)
    }
  }

  async #tx<T>(work: (client: Pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    try {
      await client.query('BEGIN')
      const result = await work(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  watch(listener: StoreEvents): () => void {
    this.#watchers.add(listener)
    return () => this.#watchers.delete(listener)
  }

  async createAccount(input: NewAccount): Promise<AccountRecord> {
    const createdAt = Date.now()
    const id = accountIdOf(input.apiKey)
    try {
      await this.#pool.query(
        'INSERT INTO accounts (id, name, email, tokens, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [id, input.name, input.email, input.tokens, input.passwordHash ?? null, createdAt],
      )
    } catch (error) {
      if ((error as { constraint?: string }).constraint === 'accounts_email') {
        throw new DuplicateAccountError(`An account with the email ${input.email} already exists.`)
      }
      throw error
    }
    return { id, name: input.name, email: input.email, tokens: input.tokens, createdAt }
  }

  getAccount(apiKey: string): Promise<AccountRecord | undefined> {
    return this.getAccountById(accountIdOf(apiKey))
  }

  async getAccountById(id: string): Promise<AccountRecord | undefined> {
    const { rows } = await this.#pool.query<{ id: string; name: string; email: string; tokens: number; created_at: number }>(
      'SELECT id, name, email, tokens, created_at FROM accounts WHERE id = $1',
      [id],
    )
    const row = rows[0]
    return row && { id: row.id, name: row.name, email: row.email, tokens: row.tokens, createdAt: row.created_at }
  }

  submitJob(job: JobRecord, reserve: number): Promise<boolean> {
    return this.#tx(async (db) => {
      // The row lock this UPDATE takes orders concurrent spends of the account on every replica.
      const spent = await db.query<{ unlimited: boolean }>(
        `UPDATE accounts SET tokens = CASE WHEN tokens = -1 THEN -1 ELSE tokens - $2 END
         WHERE id = $1 AND (tokens = -1 OR tokens >= $2) RETURNING tokens = -1 AS unlimited`,
        [job.accountId, reserve],
      )
      if (spent.rowCount !== 1) return false
      const reserved = spent.rows[0]!.unlimited ? 0 : reserve
      // The job's turn; the account's row is locked above, so its finish moves one submit at a time.
      const turn = await db.query<{ tag: number }>(
        `SELECT greatest((SELECT clock FROM scheduler WHERE id = 1),
                         coalesce((SELECT finish FROM fair_finish WHERE account_id = $1), 0)) AS tag`,
        [job.accountId],
      )
      const tag = turn.rows[0]!.tag
      await db.query(
        `INSERT INTO fair_finish (account_id, finish) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET finish = excluded.finish`,
        [job.accountId, tag + job.inputs.length],
      )
      const { rows } = await db.query<{ seq: number }>(
        `INSERT INTO jobs (id, account_id, status, params, inputs, reserved, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
        [job.id, job.accountId, job.status, JSON.stringify(job.params), JSON.stringify(job.inputs), reserved, job.createdAt],
      )
      await db.query(
        `INSERT INTO items (job_id, idx, account_id, job_seq, state, tag)
         SELECT $1, g, $2, $3, 'waiting', $5 FROM generate_series(0, $4::int - 1) AS g`,
        [job.id, job.accountId, rows[0]!.seq, job.inputs.length, tag],
      )
      await db.query('SELECT pg_notify($1, $2)', [CHANNEL, 'work'])
      return true
    })
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const { rows } = await this.#pool.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id])
    return rows[0] && toJob(rows[0])
  }

  claimNextItem(): Promise<ClaimedItem | undefined> {
    return this.#tx(async (db) => {
      // The order of Store.claimNextItem; an image whose lease expired (its replica died) is claimable
      // again, its started tries still counted. SKIP LOCKED: replicas claiming at once take different images.
      const claimed = await db.query<{ job_id: string; idx: number; tries: number; tag: number }>(
        `WITH next AS (
           SELECT job_id, idx FROM items
           WHERE state = 'waiting' OR (state IN ('claimed', 'running') AND lease_until <= now())
           ORDER BY tag, job_seq, idx
           LIMIT 1 FOR UPDATE SKIP LOCKED
         )
         UPDATE items SET state = 'claimed', lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
         FROM next WHERE items.job_id = next.job_id AND items.idx = next.idx
         RETURNING items.job_id, items.idx, items.tries, items.tag`,
        [this.owner, this.#leaseMs],
      )
      const next = claimed.rows[0]
      if (!next) return undefined
      await db.query('UPDATE scheduler SET clock = greatest(clock, $1) WHERE id = 1', [next.tag])
      const { rows } = await db.query<JobRow>(
        `UPDATE jobs SET status = 'running' WHERE id = $1 AND status IN ('queued', 'running') RETURNING *`,
        [next.job_id],
      )
      const job = toJob(rows[0]!)
      return { job, index: next.idx, input: job.inputs[next.idx]!, tries: next.tries }
    })
  }

  async startItem(jobId: string, index: number): Promise<number> {
    const { rows } = await this.#pool.query<{ tries: number }>(
      `UPDATE items SET state = CASE WHEN state = 'claimed' THEN 'running' ELSE state END,
                        tries = CASE WHEN state = 'claimed' THEN tries + 1 ELSE tries END
       WHERE job_id = $1 AND idx = $2 RETURNING tries`,
      [jobId, index],
    )
    return rows[0]?.tries ?? 0
  }

  completeItem(jobId: string, index: number, outcome: ItemOutcome): Promise<number> {
    return this.#tx(async (db) => {
      // The job's row lock orders the completions of its images: exactly one of them sees 0 left.
      const job = await db.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1 FOR UPDATE', [jobId])
      const status = job.rows[0]?.status
      if (status !== 'queued' && status !== 'running') return -1
      const done = await db.query(
        `UPDATE items SET state = 'done', outcome = $3, lease_owner = NULL, lease_until = NULL
         WHERE job_id = $1 AND idx = $2 AND state <> 'done' AND lease_owner = $4`,
        [jobId, index, JSON.stringify(scrubOutcome(outcome)), this.owner],
      )
      // Our lease expired and another replica took the image over: its run is the one that counts.
      if (done.rowCount !== 1) return -1
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*) AS n FROM items WHERE job_id = $1 AND state <> 'done'`,
        [jobId],
      )
      return rows[0]!.n
    })
  }

  async releaseItem(jobId: string, index: number): Promise<void> {
    await this.#pool.query(
      `WITH released AS (
         UPDATE items SET state = 'waiting', tries = CASE WHEN state = 'running' THEN greatest(0, tries - 1) ELSE tries END,
                          lease_owner = NULL, lease_until = NULL
         WHERE job_id = $1 AND idx = $2 AND state IN ('claimed', 'running') AND lease_owner = $3 RETURNING 1
       )
       SELECT pg_notify($4, 'work') FROM released`,
      [jobId, index, this.owner, CHANNEL],
    )
  }

  async resetInterruptedItems(): Promise<void> {
    // Only this replica's claims and what dead replicas left (their leases expired): the live
    // replicas' images are theirs.
    await this.#pool.query(
      `UPDATE items SET state = 'waiting', lease_owner = NULL, lease_until = NULL
       WHERE state IN ('claimed', 'running') AND (lease_owner = $1 OR lease_until <= now())`,
      [this.owner],
    )
  }

  async countWaitingItems(): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>(`SELECT count(*) AS n FROM items WHERE state = 'waiting'`)
    return rows[0]!.n
  }

  async jobItems(jobId: string): Promise<ItemRecord[]> {
    const { rows } = await this.#pool.query<{ idx: number; state: ItemRecord['state']; tries: number; tag: number; outcome: ItemOutcome | null }>(
      'SELECT idx, state, tries, tag, outcome FROM items WHERE job_id = $1 ORDER BY idx',
      [jobId],
    )
    return rows.map((r) => ({ jobId, index: r.idx, state: r.state, tries: r.tries, tag: r.tag, outcome: r.outcome }))
  }

  finishJob(id: string, outcome: JobOutcome): Promise<void> {
    return this.#tx(async (db) => {
      const found = await db.query<JobRow>('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [id])
      const row = found.rows[0]
      if (!row || row.status === 'done' || row.status === 'failed') return
      const job = toJob(row)
      const charge = outcome.status === 'done' ? Math.min(outcome.charge, job.reserved) : 0
      if (job.reserved - charge > 0) {
        await db.query('UPDATE accounts SET tokens = tokens + $1 WHERE id = $2 AND tokens >= 0', [job.reserved - charge, job.accountId])
      }
      const scrubbed = withoutCredentials(job.params, job.inputs)
      const callback = job.params.callbackUrl ? 'pending' : null
      const result =
        outcome.status === 'done' ? JSON.stringify(outcome.result.map((item) => scrubOutcome({ item, downloads: [], charge: 0 }).item)) : null
      const error = outcome.status === 'failed' ? scrubCredentials(outcome.error) : null
      await db.query('DELETE FROM items WHERE job_id = $1', [id])
      await db.query(
        `UPDATE jobs SET status = $2, result = $3, error = $4, finished_at = $5, reserved = 0, params = $6, inputs = $7,
                         callback_state = $8 WHERE id = $1`,
        [id, outcome.status, result, error, outcome.finishedAt, JSON.stringify(scrubbed.params), JSON.stringify(scrubbed.inputs), callback],
      )
      if (outcome.status === 'done' && outcome.downloads.length > 0) {
        const d = outcome.downloads
        await db.query(
          `INSERT INTO downloads (dir, name, blob, size, content_type, job_id, expires_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
           ON CONFLICT (dir, name) DO UPDATE SET blob = excluded.blob, size = excluded.size,
             content_type = excluded.content_type, job_id = excluded.job_id, expires_at = excluded.expires_at`,
          [
            d.map((x) => x.dir),
            d.map((x) => x.name),
            d.map((x) => x.blob),
            d.map((x) => x.size),
            d.map((x) => x.contentType),
            d.map((x) => x.jobId),
            d.map((x) => x.expiresAt),
          ],
        )
      }
      // Delivered at commit: long-polls on every replica wake.
      await db.query('SELECT pg_notify($1, $2)', [CHANNEL, `done:${id}`])
    })
  }

  async settleCallback(id: string, state: 'delivered' | 'failed'): Promise<void> {
    await this.#pool.query('UPDATE jobs SET callback_state = $2 WHERE id = $1', [id, state])
  }

  async pendingCallbacks(): Promise<JobRecord[]> {
    const { rows } = await this.#pool.query<JobRow>(`SELECT * FROM jobs WHERE callback_state = 'pending' ORDER BY finished_at`)
    return rows.map(toJob)
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    const { rows } = await this.#pool.query<JobRow>(`SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq`)
    return rows.map(toJob)
  }

  async getDownload(dir: string, name: string): Promise<DownloadRecord | undefined> {
    const { rows } = await this.#pool.query<DownloadRow>('SELECT * FROM downloads WHERE dir = $1 AND name = $2', [dir, name])
    return rows[0] && toDownload(rows[0])
  }

  async hasDownloadDir(dir: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query('SELECT 1 FROM downloads WHERE dir = $1 LIMIT 1', [dir])
    return rowCount === 1
  }

  async takeExpiredDownloads(now: number): Promise<DownloadRecord[]> {
    // One statement: two replicas sweeping at once each get (and delete the files of) different rows.
    const { rows } = await this.#pool.query<DownloadRow>('DELETE FROM downloads WHERE expires_at <= $1 RETURNING *', [now])
    // The sweeper's pass also drops what no replica needs any more: old rate-limit windows, expired cache entries.
    await this.#pool.query(`DELETE FROM rate_limits WHERE window_start < now() - interval '1 day'`)
    await this.#pool.query('DELETE FROM result_cache WHERE expires_at <= $1', [now])
    return rows.map(toDownload)
  }

  async deleteJobsFinishedBefore(before: number): Promise<number> {
    const { rowCount } = await this.#pool.query('DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1', [before])
    return rowCount ?? 0
  }

  async hitRateLimit(key: string, windowMs: number): Promise<{ current: number; ttl: number }> {
    const { rows } = await this.#pool.query<{ hits: number; ttl: number }>(
      `INSERT INTO rate_limits AS r (key, window_start, hits) VALUES ($1, now(), 1)
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN r.window_start + $2 * interval '1 millisecond' <= now() THEN 1 ELSE r.hits + 1 END,
         window_start = CASE WHEN r.window_start + $2 * interval '1 millisecond' <= now() THEN now() ELSE r.window_start END
       RETURNING hits, greatest(0, ceil(extract(epoch FROM window_start + $2 * interval '1 millisecond' - now()) * 1000))::bigint AS ttl`,
      [key, windowMs],
    )
    return { current: rows[0]!.hits, ttl: rows[0]!.ttl }
  }

  async findCachedResult(accountId: string, key: string, now: number): Promise<EngineResult | undefined> {
    const { rows } = await this.#pool.query<{ format: EngineResult['format']; width: number; height: number; original_size: number; data: Buffer; webp: Buffer | null }>(
      'SELECT format, width, height, original_size, data, webp FROM result_cache WHERE account_id = $1 AND key = $2 AND expires_at > $3',
      [accountId, key, now],
    )
    const r = rows[0]
    return r && { format: r.format, width: r.width, height: r.height, originalSize: r.original_size, data: r.data, webp: r.webp }
  }

  async saveCachedResult(accountId: string, key: string, result: EngineResult, expiresAt: number): Promise<void> {
    await this.#pool.query(
      `INSERT INTO result_cache (account_id, key, format, width, height, original_size, data, webp, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (account_id, key) DO UPDATE SET expires_at = greatest(result_cache.expires_at, excluded.expires_at)`,
      [accountId, key, result.format, result.width, result.height, result.originalSize, Buffer.from(result.data), result.webp && Buffer.from(result.webp), expiresAt],
    )
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#heartbeat)
    this.#watchers.clear()
    await this.#listener.end().catch(() => {})
    await this.#pool.end().catch(() => {})
  }
}

/** Connects, migrates (under the advisory lock) and starts listening; nothing is left open on failure. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const pg = await loadPg()
  const types = numericTypes(pg)
  const leaseMs = options.leaseMs ?? 30_000
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10, types })
  // An idle connection the server drops must not crash the process; the next query opens another.
  pool.on('error', (error) => serverLog(`PostgreSQL connection lost: ${error.message}`))
  const connectListener = async (migrating = false): Promise<Pg.Client> => {
    const listener = new pg.Client({ connectionString: options.url, types })
    listener.on('error', (error) => serverLog(`PostgreSQL LISTEN connection lost: ${error.message}`))
    try {
      await listener.connect()
      if (migrating) await migrate(listener)
      await listener.query(`LISTEN ${CHANNEL}`)
      return listener
    } catch (error) {
      await listener.end().catch(() => {})
      throw error
    }
  }
  let listener: Pg.Client
  try {
    listener = await connectListener(true)
  } catch (error) {
    await pool.end().catch(() => {})
    throw new Error(`Could not open the PostgreSQL database ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error })
  }
  return new PostgresStore(pool, listener, () => connectListener(), leaseMs)
}
