import type { ImageParams } from '../../contract/params.ts'
import type { EngineResult } from '../../engine/types.ts'

/**
 * The server's state behind one interface with three backends: plain memory (the embedded default),
 * SQLite files in `--data-dir` (one machine) and PostgreSQL (`--database`, any number of replicas).
 * Callers always `await` a store method: memory and SQLite answer synchronously (one synchronous block
 * or SQLite transaction is their atomic step), PostgreSQL asynchronously (one transaction per method).
 */
export type Awaitable<T> = T | Promise<T>

export interface AccountRecord {
  /** The SHA-256 of the API key (`accountIdOf`): the key itself is never stored. */
  id: string
  name: string
  email: string
  /** -1 = unlimited */
  tokens: number
  createdAt: number
}

export interface NewAccount {
  /** The plain key; the store keeps only its hash. */
  apiKey: string
  name: string
  email: string
  tokens: number
  passwordHash?: string | null
}

export type JobInput =
  | { kind: 'file'; name: string; blob: string }
  | { kind: 'url'; name: string; url: string }

export interface JobParams extends ImageParams {
  callbackUrl: string | null
  httpUser: string | null
  httpPass: string | null
  /**
   * The base URL the client reached at submit (`http://host:port`), so that the callback's download
   * links use it rather than the bind address. Absent in jobs stored by older versions.
   */
  publicBase?: string | null
}

export interface WebpItem {
  url: string
  optimized_size: number
  saved_bytes: number
  saved_percent: number
}

/** One result item as the contract spells it; `url`s are stored as paths and made absolute when served. */
export interface ResultItem {
  success: 0 | 1
  file_name: string
  original_size: number
  optimized_size: number
  saved_bytes: number
  saved_percent: number
  url: string | null
  webp: WebpItem | null
  /** Why the item was not optimized (an addition the contract allows). */
  error?: string
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed'

export interface JobRecord {
  id: string
  accountId: string
  status: JobStatus
  params: JobParams
  inputs: JobInput[]
  /** Tokens taken from the balance at submit and not yet settled. */
  reserved: number
  result: ResultItem[] | null
  error: string | null
  createdAt: number
  finishedAt: number | null
  /** `pending` from when a job with a `callback_url` ends until the POST was delivered or given up. */
  callbackState?: CallbackState | null
}

export type CallbackState = 'pending' | 'delivered' | 'failed'

export interface DownloadRecord {
  dir: string
  name: string
  blob: string
  size: number
  contentType: string
  jobId: string
  expiresAt: number
}

/** What one finished image left: its result item, the files written for it, the tokens it costs. */
export interface ItemOutcome {
  item: ResultItem
  downloads: Omit<DownloadRecord, 'expiresAt'>[]
  charge: number
}

/**
 * One image of an unfinished job, as the scheduler sees it:
 * `waiting` → `claimed` (a worker took it, no try counted yet: it may still be reading its bytes or
 * waiting for the pixel budget) → `running` (the engine started: one try counted) → `done`.
 */
export type ItemState = 'waiting' | 'claimed' | 'running' | 'done'

export interface ItemRecord {
  jobId: string
  /** The input's position in the job. */
  index: number
  state: ItemState
  /** Runs a worker started on this item (a crash mid-run leaves it counted). */
  tries: number
  /** Its turn in the fair order (the job's start tag; see `Store.claimNextItem`). */
  tag: number
  outcome: ItemOutcome | null
}

/** An item a worker claimed, with its job (a snapshot taken at the claim). */
export interface ClaimedItem {
  job: JobRecord
  index: number
  input: JobInput
  tries: number
}

export type JobOutcome =
  | { status: 'done'; result: ResultItem[]; downloads: DownloadRecord[]; charge: number; finishedAt: number }
  | { status: 'failed'; error: string; finishedAt: number }

export class DuplicateAccountError extends Error {
  override readonly name = 'DuplicateAccountError'
}

export interface BlobStore {
  put(key: string, data: Uint8Array): Promise<void>
  /** Writes a stream (an upload as it arrives); resolves to its size. */
  putStream(key: string, source: AsyncIterable<Uint8Array>): Promise<number>
  get(key: string): Promise<Uint8Array | undefined>
  delete(key: string): Promise<void>
  /** Delete every blob under a prefix (a job's uploads). */
  deletePrefix(prefix: string): Promise<void>
  /** The entries directly under `prefix` (`out`, `uploads`) with when they were last written. */
  listChildren(prefix: string): Promise<{ name: string; mtimeMs: number }[]>
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'postgres'
  readonly blobs: BlobStore
  /** Throws `DuplicateAccountError` when the email is taken. */
  createAccount(account: NewAccount): Awaitable<AccountRecord>
  /** The account of a plain API key. */
  getAccount(apiKey: string): Awaitable<AccountRecord | undefined>
  getAccountById(id: string): Awaitable<AccountRecord | undefined>
  /**
   * Takes `reserve` tokens and inserts the job with one `waiting` item per input, in one atomic step;
   * false (and nothing stored) when the balance is short. It also gives the job its turn (its items'
   * `tag`, see `claimNextItem`): `tag = max(clock, the account's finish)`, then the account's finish
   * becomes `tag + number of images`.
   */
  submitJob(job: JobRecord, reserve: number): Awaitable<boolean>
  getJob(id: string): Awaitable<JobRecord | undefined>
  /**
   * The scheduler's one decision, atomic: the `waiting` item with the smallest (tag, job submit order,
   * position) becomes `claimed` (its job `running`), and the clock moves up to its tag. Counts no try.
   *
   * This is start-time fair queuing with jobs as the unit: a job runs in the order it came, except that an
   * account's jobs queue behind its own earlier images (each image moves the account's finish by one). So
   * a job waits only for work queued before it plus a bounded share of the other accounts' (no more than
   * one turn each per image ahead of it), and one account's backlog holds back no one else's job.
   */
  claimNextItem(): Awaitable<ClaimedItem | undefined>
  /** The worker starts the real work on a claimed item: the item is `running` and one try counts. Returns the tries. */
  startItem(jobId: string, index: number): Awaitable<number>
  /**
   * Records a finished item (`done`, with its outcome); returns how many items of the job are not done,
   * or -1 when the job is no longer unfinished (failed meanwhile: the outcome is not kept).
   */
  completeItem(jobId: string, index: number, outcome: ItemOutcome): Awaitable<number>
  /** A claimed or running item goes back to `waiting`; a run a clean shutdown stopped does not count as a try. */
  releaseItem(jobId: string, index: number): Awaitable<void>
  /**
   * After a restart: every `claimed` or `running` item (a crash stopped it) is `waiting` again; the
   * tries of those that had started stay counted.
   */
  resetInterruptedItems(): Awaitable<void>
  /** How many items wait for a worker (for `/status`). */
  countWaitingItems(): Awaitable<number>
  /** The items of an unfinished job, by position (none once the job is finished). */
  jobItems(jobId: string): Awaitable<ItemRecord[]>
  /** Settles the job: charges `charge` of its reservation and gives the rest back, and drops its items, in one atomic step. */
  finishJob(id: string, outcome: JobOutcome): Awaitable<void>
  /** Records how a callback ended; a `pending` one is tried again after a restart. */
  settleCallback(id: string, state: 'delivered' | 'failed'): Awaitable<void>
  /** Finished jobs whose callback was not delivered nor given up yet. */
  pendingCallbacks(): Awaitable<JobRecord[]>
  /** Jobs queued or running: after a restart they are run again or failed. */
  unfinishedJobs(): Awaitable<JobRecord[]>
  getDownload(dir: string, name: string): Awaitable<DownloadRecord | undefined>
  /** Whether any download still points into this capability directory. */
  hasDownloadDir(dir: string): Awaitable<boolean>
  /** Removes and returns the downloads that expired at `now`. */
  takeExpiredDownloads(now: number): Awaitable<DownloadRecord[]>
  /** Forgets finished jobs older than `before`. */
  deleteJobsFinishedBefore(before: number): Awaitable<number>
  close(): Awaitable<void>
  /**
   * Only where several processes share the store (PostgreSQL, through LISTEN/NOTIFY): tells this process
   * that a job finished or work was queued elsewhere. Memory and SQLite serve one process, whose runner
   * sees everything itself. Returns the unsubscribe function.
   */
  watch?(listener: StoreEvents): () => void
  /**
   * Only where several processes share the store: counts a request in a rate-limit window every
   * replica sees, so that a key's limit holds across them. Without it, each process counts alone.
   */
  hitRateLimit?(key: string, windowMs: number): Promise<{ current: number; ttl: number }>
  /**
   * The team result cache, where replicas share a store: the engine's result for the same account, bytes
   * and parameters (`key`), kept until `expiresAt`. Never shared across accounts.
   */
  findCachedResult?(accountId: string, key: string, now: number): Promise<EngineResult | undefined>
  saveCachedResult?(accountId: string, key: string, result: EngineResult, expiresAt: number): Promise<void>
}

export interface StoreEvents {
  jobFinished(jobId: string): void
  workQueued(): void
}
