import type { ImageParams } from '../../contract/params.ts'

/**
 * The server's state behind one interface with two backends: SQLite files in `--data-dir` (`megaoptim
 * serve`) and plain memory (the embedded default). Methods are synchronous so that reserving tokens and
 * queuing a job is one atomic step, whatever the number of concurrent requests.
 */
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
  /** How many times a run started (a restart finds the job unfinished and runs it again). */
  attempts: number
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
  readonly kind: 'memory' | 'sqlite'
  readonly blobs: BlobStore
  /** Throws `DuplicateAccountError` when the email is taken. */
  createAccount(account: NewAccount): AccountRecord
  /** The account of a plain API key. */
  getAccount(apiKey: string): AccountRecord | undefined
  getAccountById(id: string): AccountRecord | undefined
  /** Takes `reserve` tokens and inserts the job in one atomic step; false (and nothing stored) when the balance is short. */
  submitJob(job: JobRecord, reserve: number): boolean
  getJob(id: string): JobRecord | undefined
  /** Marks the job running and counts the attempt; returns the updated record. */
  startJob(id: string): JobRecord | undefined
  /** A run stopped by a clean shutdown: back to queued, and the attempt does not count. */
  requeueJob(id: string): void
  /** Settles the job: charges `charge` of its reservation and gives the rest back, in one atomic step. */
  finishJob(id: string, outcome: JobOutcome): void
  /** Records how a callback ended; a `pending` one is tried again after a restart. */
  settleCallback(id: string, state: 'delivered' | 'failed'): void
  /** Finished jobs whose callback was not delivered nor given up yet. */
  pendingCallbacks(): JobRecord[]
  /** Jobs queued or running: after a restart they are run again or failed. */
  unfinishedJobs(): JobRecord[]
  getDownload(dir: string, name: string): DownloadRecord | undefined
  /** Whether any download still points into this capability directory. */
  hasDownloadDir(dir: string): boolean
  /** Removes and returns the downloads that expired at `now`. */
  takeExpiredDownloads(now: number): DownloadRecord[]
  /** Forgets finished jobs older than `before`. */
  deleteJobsFinishedBefore(before: number): number
  close(): void
}
