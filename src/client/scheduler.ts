/**
 * Every API request goes through here: the endpoint's rate limiter, the breaker, and retries with
 * exponential backoff and jitter (network errors, timeouts, 5xx, broken JSON, 429 with `Retry-After`),
 * bounded by `maxAttempts` and the caller's deadline.
 */
import { CircuitBreaker } from './breaker.ts'
import { CircuitOpenError, type MegaOptimError, RateLimitError, TimeoutError, isMegaOptimError } from './errors.ts'
import { seconds } from './duration.ts'
import { ENDPOINT_PATHS, type EndpointKind, type RateHeaders } from './http.ts'
import type { ResolvedClientOptions } from './options.ts'
import { EndpointLimiter } from './rate-limiter.ts'
import type { ClientEvent, ClientStats } from './types.ts'

export interface RunContext {
  /** The caller's signal: its abort is rethrown as is. */
  signal?: AbortSignal
  /** After it nothing new is started and requests in flight are cut; it may move later while the call runs. */
  deadline: Deadline
  /** Files the request is about, for events and messages. */
  files: string[]
  /** The path shown in events, e.g. `/optimize`. */
  path: string
}

/** Epoch ms `endsAt`, counted from `startedAt` (for messages: "no answer within 120 s"). */
export interface Deadline {
  startedAt: number
  endsAt: number
  /**
   * When set, the budget is for silence, not for work: every answer from the API moves `endsAt` to at least
   * `renewMs` from then. A large build against an API that keeps answering is never cut, however long it
   * takes, while an API that never answers costs exactly `renewMs`.
   */
  renewMs?: number
}

/** The waiting budget a deadline stands for, as messages state it. */
export function budgetMs(deadline: Deadline): number {
  return deadline.renewMs ?? deadline.endsAt - deadline.startedAt
}

export class Scheduler {
  readonly breaker = new CircuitBreaker()
  readonly stats: ClientStats = {
    requests: 0,
    rateLimited: 0,
    retries: 0,
    tokensLeft: null,
    downloads: 0,
    byEndpoint: { optimize: 0, result: 0, info: 0 },
  }
  readonly #limiters: Record<EndpointKind, EndpointLimiter>
  readonly #opts: ResolvedClientOptions

  constructor(opts: ResolvedClientOptions) {
    this.#opts = opts
    const limiter = (kind: EndpointKind) =>
      new EndpointLimiter(opts.rateLimits[kind], (requests, perMs, source) =>
        this.emit({ type: 'rate-limit', endpoint: ENDPOINT_PATHS[kind], requests, perMs, source }),
      )
    this.#limiters = { optimize: limiter('optimize'), result: limiter('result'), info: limiter('info') }
  }

  emit(event: ClientEvent): void {
    try {
      this.#opts.onEvent(event)
    } catch {
      // A throwing listener must not lose an image.
    }
  }

  /**
   * Run `send` (one HTTP attempt) under the endpoint's limit, retrying what is retryable.
   * Throws the last MegaOptimError, a CircuitOpenError, a deadline TimeoutError, or the caller's abort reason.
   */
  async run<T>(
    kind: EndpointKind,
    ctx: RunContext,
    send: (signal: AbortSignal | undefined, onWire: () => void, timeLeftMs: number, onRateHeaders: (headers: RateHeaders) => void) => Promise<T>,
  ): Promise<T> {
    const limiter = this.#limiters[kind]
    const firstAt = Date.now()
    // The last error, told with the real count and span of the attempts (never an option's name).
    const tried = (error: MegaOptimError, attempts: number): MegaOptimError => {
      if (attempts > 1) error.message += ` (tried ${attempts} times over ${seconds(Date.now() - firstAt)})`
      return error
    }
    for (let attempt = 1; ; attempt++) {
      ctx.signal?.throwIfAborted()
      this.breaker.check(kind)
      const remaining = ctx.deadline.endsAt - Date.now()
      if (remaining <= 0) throw tried(deadlineError(ctx), attempt - 1)
      const waitTimeout = AbortSignal.timeout(remaining)
      const waitSignal = anySignal([ctx.signal, this.breaker.signal(kind), waitTimeout])
      let error: unknown
      let departedAt = 0
      try {
        const answer = await limiter.schedule((wired) => {
          const onWire = () => {
            departedAt ||= performance.now()
            wired()
          }
          this.breaker.check(kind)
          this.stats.requests++
          this.stats.byEndpoint![kind]++
          this.emit({ type: 'sent', endpoint: ctx.path, names: ctx.files })
          // Not aborted when the breaker opens: a request already on the wire may still be accepted (and paid for).
          // Its own timeout ends at the deadline, so a server that never answers costs no more than that.
          return send(ctx.signal, onWire, Math.max(1, ctx.deadline.endsAt - Date.now()), (headers) => limiter.learn(headers))
        }, waitSignal)
        if (ctx.deadline.renewMs !== undefined) ctx.deadline.endsAt = Math.max(ctx.deadline.endsAt, Date.now() + ctx.deadline.renewMs)
        return answer
      } catch (e) {
        error = e
      }
      if (ctx.signal?.aborted) throw ctx.signal.reason
      if (error instanceof CircuitOpenError) throw error
      if (!isMegaOptimError(error)) {
        // p-queue rejects with the wait signal's reason: the breaker's or the deadline's.
        if (this.breaker.signal(kind).aborted && this.breaker.reason) throw new CircuitOpenError(this.breaker.reason)
        if (Date.now() >= ctx.deadline.endsAt) throw tried(deadlineError(ctx), attempt - 1)
        // The deadline moved on while this request waited for its slot: wait again, it was never sent.
        if (waitTimeout.aborted && error === waitTimeout.reason) {
          attempt--
          continue
        }
        throw error
      }
      if (error instanceof RateLimitError) {
        this.stats.rateLimited++
        limiter.rejected(departedAt || performance.now())
      }
      if (this.breaker.trip(error)) throw error
      if (!error.retryable) throw tried(error, attempt)
      if (Date.now() >= ctx.deadline.endsAt) throw tried(deadlineError(ctx, error), attempt)
      if (attempt >= this.#opts.maxAttempts) throw tried(error, attempt)
      const delay = this.#delay(attempt, error)
      if (Date.now() + delay >= ctx.deadline.endsAt) throw tried(deadlineError(ctx, error), attempt)
      if (error instanceof RateLimitError) limiter.pauseFor(delay)
      this.stats.retries++
      this.emit({ type: 'retried', endpoint: ctx.path, attempt, delayMs: delay, reason: `${error.code}: ${error.message}` })
      await sleep(delay, anySignal([ctx.signal, this.breaker.signal(kind)]))
    }
  }

  /** Exponential backoff with "equal jitter"; a `Retry-After` is honoured even above retryMaxDelay. */
  #delay(attempt: number, error: MegaOptimError): number {
    const cap = Math.min(this.#opts.retryMaxDelay, this.#opts.retryBaseDelay * 2 ** (attempt - 1))
    const backoff = Math.round(cap / 2 + Math.random() * (cap / 2))
    if (error instanceof RateLimitError && error.retryAfterMs !== undefined) return Math.max(error.retryAfterMs, backoff)
    return backoff
  }

  close(): void {
    for (const limiter of Object.values(this.#limiters)) limiter.close()
  }
}

/** The deadline ran out; `last` is the error of the last attempt, when there was one. */
function deadlineError(ctx: RunContext, last?: MegaOptimError): TimeoutError {
  const files = ctx.files.length ? ` for ${ctx.files.join(', ')}` : ''
  const why = last ? ` (last: ${last.message})` : ''
  return new TimeoutError(
    `${ctx.path}${files}: no answer from the API within ${seconds(budgetMs(ctx.deadline))}${why}; the original is kept.`,
    { endpoint: ctx.path },
    'MEGAOPTIM_DEADLINE',
  )
}

export function anySignal(signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined))
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
