/**
 * One limiter per API endpoint, on p-queue.
 *
 * Two rules, both on the moment a request leaves (undici's `onRequestStart`, when it is handed to the
 * socket), since that is what the server counts, not when our code decided to send it:
 * 1. The limit: at most `requests` departures in any window of `perMs + margin`.
 * 2. The pace: departures are spread one `spacing` (= window / requests) apart, on a virtual schedule (GCRA:
 *    a theoretical departure time that advances by `spacing` per request). A request may leave up to
 *    `tolerance` (a quarter of `spacing`) before its slot, so a timer that fired late or a busy event loop
 *    (a bundler next door) is made up on the next request instead of lost for good; after an idle spell the
 *    schedule restarts from now, so there are no bursts.
 *
 * Why not p-queue's windows alone: fixed windows let `intervalCap` tasks run at the end of one window and
 * `intervalCap` more at the start of the next, twice the limit in a short span; and a window counted on task
 * *starts* says nothing about when requests actually leave. p-queue runs the gate: one request at a time
 * (`concurrency: 1`), strictly `intervalCap: 1` per `spacing - tolerance` on starts, pausable on `Retry-After`.
 *
 * Proof of the limit: request k is released only once request k - `requests` left at least
 * `perMs + margin` earlier, and it leaves no earlier than it is released; so any half-open window of
 * `perMs + margin` holds at most `requests` departures. A server counting arrivals (departure + a delay
 * between 0 and J) in any window of `perMs` sees departures from a window of `perMs + J`: at most `requests`
 * while J <= margin, whatever its window alignment (sliding or fixed). margin = max(1% of perMs, 200 ms):
 * 600 ms on the hosted 60 s window, for about 1% of the throughput.
 *
 * A `Retry-After` pauses the whole endpoint (not only the request that got it), so queued requests don't
 * run into the same wall.
 */
import PQueue from 'p-queue'
import type { RateHeaders } from './http.ts'
import type { RateLimitSpec } from './types.ts'

export const RATE_MARGIN = { fraction: 0.01, minMs: 200 }

export interface Pacing {
  /** Requests allowed in `window`. */
  requests: number
  /** `perMs + margin`, in ms. */
  window: number
  /** `window / requests`: the time between departures at full speed. */
  spacing: number
  /** How early a departure may be against its slot, to make up for lateness. */
  tolerance: number
}

export function pacing(spec: RateLimitSpec): Pacing {
  const margin = Math.max(spec.perMs * RATE_MARGIN.fraction, RATE_MARGIN.minMs)
  const window = Math.ceil(spec.perMs + margin)
  const spacing = window / spec.requests
  return { requests: spec.requests, window, spacing, tolerance: spacing / 4 }
}

/** Where a lower limit was learned: the answer's `X-RateLimit-Limit`, or what a 429 let through. */
export type LimitSource = 'headers' | '429'

export class EndpointLimiter {
  #pacing: Pacing
  readonly #perMs: number
  /** Whether the server ever said its limit: then a 429 teaches nothing more about it. */
  #told = false
  readonly #onLearn: (requests: number, perMs: number, source: LimitSource) => void
  readonly #queue: PQueue
  /** Departure times (performance.now) of the last `requests` requests. */
  readonly #departures: number[] = []
  /** The theoretical departure time of the next request (GCRA). */
  #slot = -Infinity
  #resumeAt = 0
  /** The same moment on the performance clock, for requests already held at the gate. */
  #pausedUntil = -Infinity
  #resumeTimer: NodeJS.Timeout | undefined

  constructor(spec: RateLimitSpec, onLearn: (requests: number, perMs: number, source: LimitSource) => void = () => {}) {
    this.#pacing = pacing(spec)
    this.#perMs = spec.perMs
    this.#onLearn = onLearn
    // p-queue's interval is a floor only: a limit learned later is enforced by the gate in schedule().
    const { spacing, tolerance } = this.#pacing
    this.#queue = new PQueue({ concurrency: 1, intervalCap: 1, interval: Math.max(1, Math.floor(spacing - tolerance)), strict: true })
  }

  /**
   * Run `fn` when the limit allows. `fn` must call `onWire` when its request is handed to the socket (if it
   * never gets that far, its settling counts instead). Rejects with `signal.reason` if aborted while waiting.
   */
  schedule<T>(fn: (onWire: () => void) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue
        .add(
          async () => {
            // Asked again after each wait: a limit learned or a pause begun meanwhile applies to this request too.
            for (;;) {
              const { requests, window, tolerance } = this.#pacing
              const nth = this.#departures.length >= requests ? this.#departures[this.#departures.length - requests]! : -Infinity
              const at = Math.max(nth + window, this.#slot - tolerance, this.#pausedUntil)
              if (at <= performance.now()) break
              await until(at)
            }
            const { requests, spacing } = this.#pacing
            // Aborted while held here: p-queue has already rejected the caller; send nothing.
            signal?.throwIfAborted()
            let departedAt = 0
            let departed!: () => void
            const onDeparture = new Promise<void>((r) => (departed = r))
            const mark = () => {
              // Stamped when undici reports it, not when this task next gets the event loop.
              departedAt ||= performance.now()
              departed()
            }
            const running = fn(mark)
            // The caller gets its answer as soon as it comes; only the gate waits for the departure.
            resolve(running)
            running.then(mark, mark)
            await onDeparture
            this.#departures.push(departedAt)
            if (this.#departures.length > requests) this.#departures.splice(0, this.#departures.length - requests)
            // Late beyond the tolerance (or idle): the schedule restarts from this departure, no catching up.
            this.#slot = Math.max(this.#slot, departedAt) + spacing
          },
          { signal },
        )
        .catch(reject)
    })
  }

  /** The pacing in force: the configured limit, or a lower one the server made known. */
  get pacing(): Pacing {
    return this.#pacing
  }

  /**
   * What an answer said. A limit lower than ours is adopted, taken over our window (a minute unless
   * configured otherwise); none remaining with a known reset holds every request until then.
   */
  learn(headers: RateHeaders): void {
    if (headers.limit !== undefined) {
      this.#told = true
      this.#lower(headers.limit, 'headers')
    }
    if (headers.remaining === 0 && headers.resetMs !== undefined && headers.resetMs > 0) this.pauseFor(headers.resetMs)
  }

  /**
   * A 429 from a server that never said its limit, for the request that left at `departedAt`: the server
   * let through what left in the window before it, so that is its limit. Requests that left after it are
   * not counted (they may be refused too, but teach nothing more).
   */
  rejected(departedAt: number): void {
    if (this.#told) return
    // Counted over the window less the margin: a request that left just inside our window may have
    // arrived just outside the server's, and a limit guessed one too high costs another 429.
    const since = departedAt - this.#perMs + (this.#pacing.window - this.#perMs)
    const through = this.#departures.filter((t) => t < departedAt && t > since).length
    this.#lower(Math.max(1, through), '429')
  }

  #lower(requests: number, source: LimitSource): void {
    if (requests >= this.#pacing.requests) return
    this.#pacing = pacing({ requests, perMs: this.#perMs })
    // The GCRA slot moves to the new spacing from the last departure.
    const last = this.#departures.at(-1)
    if (last !== undefined) this.#slot = last + this.#pacing.spacing
    this.#onLearn(requests, this.#perMs, source)
  }

  /** Start nothing on this endpoint for `ms` (a `Retry-After`); a longer pause already running wins. */
  pauseFor(ms: number): void {
    const until = Date.now() + ms
    if (until <= this.#resumeAt) return
    this.#resumeAt = until
    this.#pausedUntil = performance.now() + ms
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

/** Wait until `performance.now() >= at`; timers have whole-millisecond resolution and may wake a hair early. */
async function until(at: number): Promise<void> {
  for (let left = at - performance.now(); left > 0; left = at - performance.now()) {
    await new Promise((r) => setTimeout(r, Math.ceil(left)))
  }
}
