/**
 * One limiter per API endpoint, on p-queue.
 *
 * Why spacing and not windows: p-queue's fixed windows let `intervalCap` tasks run at the end of one window
 * and `intervalCap` more at the start of the next, twice the limit in a short span. Instead every endpoint
 * sends one request at a time, spaced: `interval = ceil((perMs + margin) / requests)` with
 * `margin = max(1% of perMs, 200 ms)`.
 *
 * Spacing is measured where the server sees it: from the moment a request is handed to the socket (undici's
 * `onRequestStart`), not from when our code decided to send it. A busy event loop (a bundler next door) can
 * delay that moment; the next request then waits `interval` after the delayed one instead of catching up.
 * p-queue runs the gate (`concurrency: 1`, plus strict `intervalCap: 1` per `interval` on starts).
 *
 * Proof: consecutive requests reach the wire at least `interval` apart, so any window of `perMs` holds at
 * most `floor(perMs / interval) + 1 <= requests` of them (as `interval × requests > perMs`), whatever the
 * server's window alignment. The margin absorbs jitter after the socket (network, the server's own loop):
 * request `requests + 1` leaves at least `margin` after the window of request 1 closes.
 * The cost is about 1% of the throughput on the hosted 60 s window.
 *
 * A `Retry-After` pauses the whole endpoint (not only the request that got it), so queued requests don't
 * run into the same wall.
 */
import PQueue from 'p-queue'
import type { RateLimitSpec } from './types.ts'

export const RATE_MARGIN = { fraction: 0.01, minMs: 200 }

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
    this.#queue = new PQueue({ concurrency: 1, intervalCap: 1, interval: this.spacing, strict: true })
  }

  /**
   * Run `fn` when the limit allows. `fn` must call `onWire` when its request is handed to the socket; the
   * next request waits `spacing` after that (or after `fn` settles, if it never got that far).
   * Rejects with `signal.reason` if aborted while waiting.
   */
  schedule<T>(fn: (onWire: () => void) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue
        .add(
          async () => {
            let wiredAt = 0
            let wired!: () => void
            const onWire = new Promise<void>((r) => (wired = r))
            const mark = () => {
              // Stamped when undici reports it, not when this task next gets the event loop.
              wiredAt ||= performance.now()
              wired()
            }
            const running = fn(mark)
            // The caller gets its answer as soon as it comes; only the gate waits out the spacing.
            resolve(running)
            // Settled without reaching the wire (refused, aborted): the gate opens all the same.
            running.then(mark, mark)
            await onWire
            await new Promise((r) => setTimeout(r, Math.max(0, wiredAt + this.spacing - performance.now())))
          },
          { signal },
        )
        .catch(reject)
    })
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
