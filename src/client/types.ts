/**
 * The public shape of the API client. `src/core/` (the plugin) and the CLI program against this.
 * Implementation: `client.ts` (calls), `scheduler.ts` (queue, batching, retries, breaker).
 */
import type { Compression } from '../contract/params.ts'
import type { MegaOptimError } from './errors.ts'

export type { Compression } from '../contract/params.ts'

/** An image to optimize: bytes with a name, a file on disk, or a public URL. */
export type OptimizeInput =
  | { name: string; data: Uint8Array }
  | { path: string; name?: string }
  | { url: string }

export interface OptimizeParams {
  /** @default 'intelligent' */
  compression?: Compression
  /** Also fetch a WebP version. @default false */
  webp?: boolean
  /** @default false */
  keepExif?: boolean
  /** @default true */
  cmykToRgb?: boolean
  /** 0 = off. @default 0 */
  maxWidth?: number
  /** 0 = off. @default 0 */
  maxHeight?: number
  callbackUrl?: string
  httpUser?: string
  httpPass?: string
}

/** One outcome per input, in input order. Per-item failures never throw. */
export type OptimizeOutcome =
  | {
      status: 'optimized'
      input: OptimizeInput
      name: string
      originalSize: number
      optimizedSize: number
      data: Uint8Array
      /** The verified WebP bytes, when asked for and offered by the API. */
      webp: Uint8Array | null
      /** Why an offered WebP version could not be used; the optimized image itself is still good. */
      webpError?: MegaOptimError
    }
  | {
      /**
       * The API answered `success: 0`: savings of 5% or less, or the image could not be processed. Keep the
       * original; no token was spent.
       */
      status: 'no-gain'
      input: OptimizeInput
      name: string
      originalSize: number
      /** The server's explanation, when it gave one (the compatible server's `error` field). */
      reason?: string
    }
  | {
      status: 'failed'
      input: OptimizeInput
      name: string
      error: MegaOptimError
    }

export type ClientEvent =
  | { type: 'queued'; names: string[] }
  | { type: 'sent'; endpoint: string; names: string[] }
  | { type: 'done'; name: string; outcome: OptimizeOutcome['status'] }
  | { type: 'retried'; endpoint: string; attempt: number; delayMs: number; reason: string }
  | { type: 'failed'; name: string; error: MegaOptimError }

export interface ClientOptions {
  /** Sent as `X-API-KEY`; never logged. Defaults to `process.env.MEGAOPTIM_API_KEY`. */
  apiKey?: string
  /** @default 'https://api.megaoptim.com/v1' */
  endpoint?: string
  /**
   * Requests per minute per endpoint (`/optimize`, `/result`, `/users/info`), or `{ requests, perMs }` for
   * another window, or one of those per endpoint (`{ optimize, result, info }`). The client never sends
   * faster than this in any window of `perMs`. @default 120
   */
  rateLimit?: number | RateLimitSpec | { optimize?: number | RateLimitSpec; result?: number | RateLimitSpec; info?: number | RateLimitSpec }
  /** Jobs in flight at once. @default 8 */
  maxInFlightJobs?: number
  /** Per-request timeout in ms. @default 60_000 */
  requestTimeout?: number
  /** Attempts per request on retryable errors (network, 500, broken JSON, 429). @default 5 */
  maxAttempts?: number
  /**
   * Total deadline for one `optimize()` call in ms. When not set, a large call gets, on top of the 10
   * minutes, the time the rate limit alone needs to send it (1 000 images at 120/min: about 100 s more).
   * @default 600_000
   */
  deadline?: number
  /** Seconds one `/result` long-poll asks the API to wait (`?timeout=N`), 1..300. @default 120 */
  pollTimeout?: number
  /** Result downloads at once (they are not rate-limited). @default 8 */
  downloadConcurrency?: number
  /** First retry delay in ms; doubles per attempt, with full jitter. @default 500 */
  retryBaseDelay?: number
  /** Longest retry delay in ms (a longer `Retry-After` still wins). @default 30_000 */
  retryMaxDelay?: number
  /** Images per `/optimize` request, 1..5. @default 5 */
  maxBatchSize?: number
  onEvent?: (event: ClientEvent) => void
}

/** A rate limit: at most `requests` in any window of `perMs` milliseconds. */
export interface RateLimitSpec {
  requests: number
  perMs: number
}

export interface UserInfo {
  name: string
  email: string
  /** -1 = unlimited */
  tokens: number
}

export interface ClientStats {
  /** HTTP requests made to the API (downloads not included). */
  requests: number
  /** 429 answers seen. */
  rateLimited: number
  retries: number
  /** The balance the API last reported, if any. */
  tokensLeft: number | null
  /** Result downloads made (not counted in `requests`). */
  downloads?: number
  /** HTTP requests per endpoint: `optimize`, `result`, `info`. */
  byEndpoint?: { optimize: number; result: number; info: number }
}
