/**
 * One limiter per API endpoint, on p-queue.
 *
 * Why spacing and not windows: p-queue's fixed windows let `intervalCap` tasks run at the end of one window
 * and `intervalCap` more at the start of the next, twice the limit in a short span. Instead every endpoint
 * gets `intervalCap: 1` in strict (sliding) mode with `interval = ceil((perMs + margin) / requests)`, where
 * `margin = max(2% of perMs, 50 ms)`. Two starts are then always at least `interval` apart, so any window of
 * `perMs` holds at most `floor(perMs / interval) + 1 <= requests` starts (as `interval × requests > perMs`),
 * whatever the server's window alignment. The margin leaves room for arrival jitter between client and
 * server: the server sees request `requests + 1` at least `margin` after request 1, even if request 1 was
 * delayed on the way by almost that much (a cold connection, a busy event loop, the internet).
 * The cost is about 2% of the throughput.
 *
 * A `Retry-After` pauses the whole endpoint (not only the request that got it), so queued requests don't
 * run into the same wall.
 */
import PQueue from 'p-queue'
import type { RateLimitSpec } from './types.ts'

export const RATE_MARGIN = { fraction: 0.02, minMs: 50 }

export function spacingMs(spec: RateLimitSpec): number {
  const margin = Math.max(spec.perMs * RATE_MARGIN.fraction, RATE_MARGIN.minMs)
  return Math.ceil((spec.perMs + margin) / spec.requests)
}

export class EndpointLimiter {
  readonly spacing: number
  readonly #queue: PQueue
  #resumeAt = 0
  #resumeTimer: NodeJS.Timeout | undefined

  constructor(spec: RateLimitSpec) {
    this.spacing = spacingMs(spec)
    this.#queue = new PQueue({ intervalCap: 1, interval: this.spacing, strict: true })
  }

  /** Run `fn` when the limit allows; rejects with `signal.reason` if aborted while waiting. */
  schedule<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.#queue.add(fn, { signal }) as Promise<T>
  }

  /** Start nothing on this endpoint for `ms` (a `Retry-After`); a longer pause already running wins. */
  pauseFor(ms: number): void {
    const until = Date.now() + ms
    if (until <= this.#resumeAt) return
    this.#resumeAt = until
    this.#queue.pause()
    clearTimeout(this.#resumeTimer)
    this.#resumeTimer = setTimeout(() => {
      this.#resumeTimer = undefined
      this.#queue.start()
    }, ms)
  }

  /** Waiting requests (not yet started). */
  get waiting(): number {
    return this.#queue.size
  }

  close(): void {
    clearTimeout(this.#resumeTimer)
    this.#queue.clear()
  }
}
