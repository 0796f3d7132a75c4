import os from 'node:os'
import type { EngineParams, EngineOptions, EngineResult, ImageFormat } from '../engine/types.ts'
import type { ServerOptions } from './types.ts'

/** The slice of the engine the server calls; tests may swap it to make a job crash. */
export interface EngineLike {
  optimizeImage(input: Uint8Array, params: EngineParams, options?: EngineOptions): Promise<EngineResult>
  sniffFormat(bytes: Uint8Array): ImageFormat | null
  /** Tells an expected per-item failure (the input's own fault) from a server fault (crash, sharp missing, abort). */
  isEngineError(error: unknown): error is Error
  version: string
}

/** Everything `createMegaOptimServer()` takes: the public options plus tuning knobs for operators and tests. */
export interface InternalServerOptions extends ServerOptions {
  /** Requests per minute per IP on `/`, `/ping`, `/status`. @default 300 */
  healthRateLimit?: number
  /** With a database: how long a replica's claim on an image lasts unless renewed (a dead replica's expire). @default 30_000 */
  leaseMs?: number
  /**
   * A job whose images have been worked on this long in all fails with code 504. Time spent waiting for a
   * worker does not count. @default 300_000
   */
  jobTimeoutMs?: number
  /**
   * One image's time budget: past it the engine is aborted and the image answers `success: 0` (the
   * original is kept, no token is charged). @default 30_000
   */
  itemTimeoutMs?: number
  /**
   * Decoded pixels the workers may hold at once (memory and CPU follow pixels). An image waits, undecoded,
   * until its header's width × height fits; one larger than the budget runs alone.
   * @default limitInputPixels (100 megapixels)
   */
  pixelBudget?: number
  /** Wait this long before working on each image (tests use it to catch a job mid-flight). @default 0 */
  jobDelayMs?: number
  /**
   * An image whose runs were interrupted (a crash) this many times is given up when its turn comes again
   * (`success: 0`); the job's other images still run. @default 3
   */
  maxItemTries?: number
  /** Download links stop working this long after the job finishes. @default 3_600_000 (one hour) */
  downloadTtlMs?: number
  /** How often expired downloads are deleted. @default 60_000 */
  sweepIntervalMs?: number
  /** Largest accepted upload or fetched image, in bytes. @default 32 MiB */
  maxFileSize?: number
  /** Images with more pixels are refused per item (decompression bombs). @default the engine's (100 megapixels) */
  limitInputPixels?: number
  /** Timeout of one `url` fetch or one callback attempt. @default 30_000 */
  fetchTimeoutMs?: number
  /** Delays between callback attempts; its length + 1 is the number of attempts. @default [1000, 5000, 15000] */
  callbackRetryDelaysMs?: number[]
  /** Tokens given to accounts made through `POST /v1/register` (open to anyone who reaches the server). @default 0 */
  signupTokens?: number
  /** How long `close()` waits for running jobs before leaving them persisted. @default 10_000 */
  closeTimeoutMs?: number
  /** The clock (ms since epoch); tests inject one to expire downloads. @default Date.now */
  now?: () => number
  /** Defaults to the sharp engine of `src/engine/`. */
  engine?: EngineLike
}

export interface ResolvedServerOptions {
  dataDir: string | undefined
  database: string | undefined
  leaseMs: number
  /** How long the team result cache keeps a result (0 = off); only stores that share it have one. */
  dedupeMs: number
  rateLimit: number
  healthRateLimit: number
  allowPrivateUrls: boolean
  workers: number
  publicUrl: string | undefined
  jobTimeoutMs: number
  itemTimeoutMs: number
  pixelBudget: number
  jobDelayMs: number
  maxItemTries: number
  trustProxy: boolean
  downloadTtlMs: number
  sweepIntervalMs: number
  maxFileSize: number
  limitInputPixels: number | undefined
  fetchTimeoutMs: number
  callbackRetryDelaysMs: number[]
  signupTokens: number
  closeTimeoutMs: number
  now: () => number
  engine: EngineLike | undefined
}

/** The engine's own input limit (100 megapixels): by default one image of the largest size runs alone. */
const DEFAULT_PIXEL_BUDGET = 100_000_000

function wholeNumber(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${name} must be a whole number >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

function resolveDatabase(options: InternalServerOptions): string | undefined {
  const { database } = options
  if (database === undefined) return undefined
  let protocol: string | undefined
  try {
    protocol = new URL(String(database)).protocol
  } catch {
    protocol = undefined
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    // The URL may hold a password: name its shape, never echo it.
    throw new TypeError('database must be a PostgreSQL URL such as postgres://USER@HOST:5432/DB')
  }
  if (options.dataDir !== undefined) throw new TypeError('dataDir and database exclude each other: choose SQLite (one machine) or PostgreSQL (replicas)')
  return String(database)
}

/** Validates without mutating the input; messages name the option and the value. */
export function resolveServerOptions(options: InternalServerOptions = {}): ResolvedServerOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${JSON.stringify(options)}`)
  }
  if (options.dataDir !== undefined && (typeof options.dataDir !== 'string' || options.dataDir === '')) {
    throw new TypeError(`dataDir must be a non-empty string, got ${JSON.stringify(options.dataDir)}`)
  }
  const database = resolveDatabase(options)
  let publicUrl: string | undefined
  if (options.publicUrl !== undefined) {
    let parsed: URL | undefined
    try {
      parsed = new URL(String(options.publicUrl))
    } catch {
      parsed = undefined
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new TypeError(`publicUrl must be an http(s) URL, got ${JSON.stringify(options.publicUrl)}`)
    }
    publicUrl = parsed.href.replace(/\/+$/, '')
  }
  const delays = options.callbackRetryDelaysMs ?? [1000, 5000, 15000]
  if (!Array.isArray(delays) || delays.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0)) {
    throw new TypeError(`callbackRetryDelaysMs must be an array of whole numbers >= 0, got ${JSON.stringify(delays)}`)
  }
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new TypeError('now must be a function returning milliseconds since the epoch')
  }
  return {
    dataDir: options.dataDir,
    database,
    leaseMs: wholeNumber('leaseMs', options.leaseMs, 30_000, 100),
    dedupeMs: wholeNumber('dedupeDays', options.dedupeDays, 30, 0) * 24 * 60 * 60 * 1000,
    rateLimit: wholeNumber('rateLimit', options.rateLimit, 120, 1),
    healthRateLimit: wholeNumber('healthRateLimit', options.healthRateLimit, 300, 1),
    allowPrivateUrls: options.allowPrivateUrls === true,
    // 0 = an API-only replica: only with a database, where other processes run the jobs.
    workers: wholeNumber('workers', options.workers, os.availableParallelism(), database === undefined ? 1 : 0),
    publicUrl,
    jobTimeoutMs: wholeNumber('jobTimeoutMs', options.jobTimeoutMs, 300_000, 1),
    itemTimeoutMs: wholeNumber('itemTimeoutMs', options.itemTimeoutMs, 30_000, 1),
    pixelBudget: wholeNumber('pixelBudget', options.pixelBudget, options.limitInputPixels ?? DEFAULT_PIXEL_BUDGET, 1),
    jobDelayMs: wholeNumber('jobDelayMs', options.jobDelayMs, 0, 0),
    maxItemTries: wholeNumber('maxItemTries', options.maxItemTries, 3, 1),
    trustProxy: options.trustProxy === true,
    downloadTtlMs: wholeNumber('downloadTtlMs', options.downloadTtlMs, 3_600_000, 1),
    sweepIntervalMs: wholeNumber('sweepIntervalMs', options.sweepIntervalMs, 60_000, 1),
    maxFileSize: wholeNumber('maxFileSize', options.maxFileSize, 32 * 1024 * 1024, 1),
    limitInputPixels:
      options.limitInputPixels === undefined ? undefined : wholeNumber('limitInputPixels', options.limitInputPixels, 0, 1),
    fetchTimeoutMs: wholeNumber('fetchTimeoutMs', options.fetchTimeoutMs, 30_000, 1),
    callbackRetryDelaysMs: [...delays],
    signupTokens: wholeNumber('signupTokens', options.signupTokens, 0, -1),
    closeTimeoutMs: wholeNumber('closeTimeoutMs', options.closeTimeoutMs, 10_000, 0),
    now: options.now ?? Date.now,
    engine: options.engine,
  }
}
