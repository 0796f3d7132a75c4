/**
 * The MegaOptim API client: `optimize()`, `userInfo()`, `stats`. See `types.ts` for the public shapes and
 * `errors.ts` for the table of error codes.
 */
import { setMaxListeners } from 'node:events'
import { Agent } from 'undici'
import PQueue from 'p-queue'
import { makeBatches } from './batch.ts'
import { seconds } from './duration.ts'
import { InvalidResponseError, MegaOptimError, TimeoutError, safeCause } from './errors.ts'
import { type HttpContext, callApi } from './http.ts'
import { prepareInputs, type UniqueItem } from './inputs.ts'
import { type ItemOutcome, runJob } from './job.ts'
import { type ResolvedClientOptions, resolveClientOptions } from './options.ts'
import { resolveParams } from './params.ts'
import { pacing } from './rate-limiter.ts'
import { type Deadline, Scheduler, anySignal, budgetMs } from './scheduler.ts'
import type { ClientOptions, ClientStats, OptimizeInput, OptimizeOutcome, OptimizeParams, UserInfo } from './types.ts'

export interface CallOptions {
  signal?: AbortSignal
  /**
   * A deadline shared with other calls (one build's phases): epoch ms `endsAt`, counted from `startedAt`.
   * After it nothing new is sent and requests in flight are cut. Each job the API accepts moves `endsAt`
   * later by the time the rate limit made it wait (the object is updated), so a large call against a
   * healthy API is not cut by its own pacing, while an API that never answers costs exactly the budget.
   * With `renewMs`, every answer renews it: the budget is then for silence (see {@link Deadline}).
   * Default: the client's `deadline` from the start of this call.
   */
  deadline?: Deadline
}

export class MegaOptimClient {
  readonly #opts: ResolvedClientOptions
  readonly #agent: Agent
  readonly #scheduler: Scheduler
  readonly #jobs: PQueue
  readonly #downloads: PQueue
  /** Aborted by close(): calls still running reject instead of hanging on cleared queues. */
  readonly #closed = new AbortController()

  constructor(options: ClientOptions = {}) {
    this.#opts = resolveClientOptions(options)
    // undici's own header/body timeouts (300 s) would cut a long-poll of `pollTimeout: 300`; every call here
    // carries its own deadline-aware timeout instead.
    this.#agent = new Agent({ connections: 32, keepAliveTimeout: 10_000, headersTimeout: 0, bodyTimeout: 0 })
    this.#scheduler = new Scheduler(this.#opts)
    this.#jobs = new PQueue({ concurrency: this.#opts.maxInFlightJobs })
    this.#downloads = new PQueue({ concurrency: this.#opts.downloadConcurrency })
  }

  /** The API base URL this client talks to (never includes the key). */
  get endpoint(): string {
    return this.#opts.endpoint
  }

  /** A snapshot of the counters. */
  get stats(): ClientStats {
    const s = this.#scheduler.stats
    return { ...s, byEndpoint: { ...s.byEndpoint! } }
  }

  /** The account behind the key. Throws a {@link MegaOptimError} (e.g. `AuthError` for a bad key). */
  async userInfo(options: CallOptions = {}): Promise<UserInfo> {
    const now = Date.now()
    const deadline = options.deadline ?? { startedAt: now, endsAt: now + this.#opts.deadline }
    const ctx = { signal: anySignal([options.signal, this.#closed.signal]), deadline, files: [], path: '/users/info' }
    const answer = await this.#scheduler.run('info', ctx, (signal, onWire, timeLeftMs, onRateHeaders) =>
      callApi(this.#http, { kind: 'info', path: '/users/info', method: 'GET', timeoutMs: Math.min(this.#opts.requestTimeout, timeLeftMs), signal, onWire, onRateHeaders }),
    )
    const result = answer.result as { name?: unknown; email?: unknown; tokens?: unknown } | undefined
    const tokens = typeof result?.tokens === 'string' ? Number(result.tokens) : result?.tokens
    if (answer.code !== 200 || !result || typeof tokens !== 'number' || !Number.isFinite(tokens)) {
      throw new InvalidResponseError('GET /users/info answered without a result { name, email, tokens }. Check that the endpoint is a MegaOptim API.', { endpoint: '/users/info', apiCode: answer.code }, false)
    }
    this.#scheduler.stats.tokensLeft = tokens
    return { name: String(result.name ?? ''), email: String(result.email ?? ''), tokens }
  }

  /**
   * Optimize any number of inputs. Resolves to one outcome per input, in input order; per-item failures
   * are `status: 'failed'` outcomes, never a rejection. Rejects only for invalid params or the caller's abort.
   */
  async optimize(inputs: readonly OptimizeInput[], params: OptimizeParams = {}, options: CallOptions = {}): Promise<OptimizeOutcome[]> {
    if (!Array.isArray(inputs)) throw new TypeError(`inputs must be an array, got ${typeof inputs}`)
    const resolvedParams = resolveParams(params)
    const signal = anySignal([options.signal, this.#closed.signal])
    // Every queued job and download listens on this one signal: hundreds of listeners are expected.
    setMaxListeners(0, signal)
    signal.throwIfAborted()
    const callStart = Date.now()
    const prepared = await prepareInputs(inputs, signal)
    this.#scheduler.emit({ type: 'queued', names: prepared.names })

    const results = new Map<UniqueItem, ItemOutcome>()
    const itemOf = new Map<number, UniqueItem>()
    for (const item of prepared.unique) for (const index of item.members) itemOf.set(index, item)
    const batches = makeBatches(prepared.unique, this.#opts.maxBatchSize)
    // A default deadline must not doom a large call by the pacing alone: add the time the limit needs.
    const pacingMs = batches.length * Math.max(pacing(this.#opts.rateLimits.optimize).spacing, pacing(this.#opts.rateLimits.result).spacing)
    // A shared deadline earns the pacing batch by batch, as the API answers: one that never answers
    // costs exactly the budget. A deadline of this call alone gets it all up front (unless it was given).
    const deadline = options.deadline ?? {
      startedAt: callStart,
      endsAt: callStart + this.#opts.deadline + (this.#opts.deadlineGiven ? 0 : Math.ceil(pacingMs)),
    }
    const earnMs = options.deadline ? Math.ceil(pacingMs / Math.max(1, batches.length)) : 0
    const ctx = {
      http: this.#http,
      dispatcher: this.#agent,
      scheduler: this.#scheduler,
      downloads: this.#downloads,
      opts: this.#opts,
      params: resolvedParams,
      deadline,
      earnMs,
      signal,
    }
    const outcomeOf = (index: number): OptimizeOutcome => {
      const input = inputs[index]!
      const name = prepared.names[index]!
      const early = prepared.failed.get(index)
      if (early) return { status: 'failed', input, name, error: early }
      const item = itemOf.get(index)
      const r = item ? results.get(item) : undefined
      if (!r) {
        return { status: 'failed', input, name, error: new InvalidResponseError(`${name}: no outcome was produced (a bug in the client). The original is kept.`, { file: name }, false) }
      }
      return withName(r, input, name)
    }
    const report = (index: number) => {
      const outcome = outcomeOf(index)
      this.#scheduler.emit({ type: 'done', name: outcome.name, outcome: outcome.status })
      if (outcome.status === 'failed') this.#scheduler.emit({ type: 'failed', name: outcome.name, error: outcome.error })
    }
    for (const index of prepared.failed.keys()) report(index)

    await Promise.all(
      batches.map(async (batch) => {
        let outcomes: Map<UniqueItem, ItemOutcome>
        try {
          outcomes = await this.#jobs.add(() => this.#runGuarded(batch, ctx), { signal })
        } catch (error) {
          if (signal.aborted) throw signal.reason
          // A bug must not cost the caller its other images: this batch fails, the rest carry on.
          const cause = safeCause(error, [this.#opts.apiKey])
          outcomes = new Map(
            batch.items.map((item) => [
              item,
              { status: 'failed', error: new MegaOptimError('MEGAOPTIM_INTERNAL', `${item.uploadName}: the client failed unexpectedly (${cause.message}). The original is kept; please report this.`, { file: item.uploadName, cause }) },
            ]),
          )
        }
        for (const [item, outcome] of outcomes) {
          results.set(item, outcome)
          for (const index of item.members) report(index)
        }
      }),
    )
    return inputs.map((_, index) => outcomeOf(index))
  }

  /** Release sockets and timers. Calls still running reject; the client cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return
    this.#closed.abort(new Error('the MegaOptim client was closed'))
    this.#scheduler.close()
    this.#jobs.clear()
    this.#downloads.clear()
    await this.#agent.close()
  }

  /** A job slot was granted: fail fast on an open breaker or a passed deadline, else run the job. */
  async #runGuarded(batch: Parameters<typeof runJob>[0], ctx: Parameters<typeof runJob>[1]): Promise<Map<UniqueItem, ItemOutcome>> {
    const names = batch.items.map((i) => i.uploadName)
    let early: MegaOptimError | undefined
    try {
      this.#scheduler.breaker.check('optimize')
    } catch (error) {
      early = error as MegaOptimError
    }
    if (!early && Date.now() >= ctx.deadline.endsAt) {
      early = new TimeoutError(`${names.join(', ')}: not sent, the API gave no answer within ${seconds(budgetMs(ctx.deadline))}; originals are kept.`, { endpoint: '/optimize' }, 'MEGAOPTIM_DEADLINE')
    }
    if (early) {
      const out = new Map<UniqueItem, ItemOutcome>()
      for (const item of batch.items) out.set(item, { status: 'failed', error: early.forFile(item.uploadName) })
      return out
    }
    return runJob(batch, ctx)
  }

  get #http(): HttpContext {
    return { dispatcher: this.#agent, base: this.#opts.endpoint, apiKey: this.#opts.apiKey }
  }

  /** Keeps the key out of `console.log(client)` and `util.inspect`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `MegaOptimClient { endpoint: '${this.#opts.endpoint}' }`
  }

  toJSON(): { endpoint: string } {
    return { endpoint: this.#opts.endpoint }
  }
}

function withName(r: ItemOutcome, input: OptimizeInput, name: string): OptimizeOutcome {
  switch (r.status) {
    case 'optimized':
      return { status: 'optimized', input, name, originalSize: r.originalSize, optimizedSize: r.optimizedSize, data: r.data, webp: r.webp, ...(r.webpError ? { webpError: r.webpError } : {}) }
    case 'no-gain':
      return { status: 'no-gain', input, name, originalSize: r.originalSize, ...(r.reason ? { reason: r.reason } : {}) }
    case 'failed':
      // Identical bytes under another name share the outcome; the error then names this input too.
      return { status: 'failed', input, name, error: r.error.file && !name.endsWith(r.error.file) ? r.error.forFile(name) : r.error }
  }
}

/** `new MegaOptimClient(options)`. */
export function createClient(options: ClientOptions = {}): MegaOptimClient {
  return new MegaOptimClient(options)
}
