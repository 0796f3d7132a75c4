import PQueue from 'p-queue'
import { loadDefaultEngine } from './engine.ts'
import { processItem, type ItemDeps } from './item.ts'
import type { EngineLike, ResolvedServerOptions } from './options.ts'
import type { OutboundContext } from './outbound.ts'
import type { JobRecord, Store } from './store/types.ts'

/** The job took longer than `jobTimeoutMs`: it fails with code 504. */
class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError'
}

/** The server is closing: the job stays persisted (SQLite) and runs again after a restart. */
class ShutdownError extends Error {
  override readonly name = 'ShutdownError'
}

function abortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function logJobError(jobId: string, error: unknown): void {
  console.error(`[megaoptim server] job ${jobId}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
}

export interface JobEvents {
  /** Called once per job that reached `done` or `failed`. */
  onFinished(job: JobRecord): void
}

/**
 * Runs jobs on a pool of `workers` item slots (sharp works off the main thread, so an in-process queue
 * keeps the event loop free), with a per-job timeout, and settles tokens when a job ends.
 */
export class JobRunner {
  readonly #store: Store
  readonly #options: ResolvedServerOptions
  readonly #outbound: OutboundContext
  readonly #events: JobEvents
  readonly #queue: PQueue
  /** Jobs between start and settle; `waitingItems` counts those of its items not yet finished. */
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void>; waitingItems: number }>()
  readonly #waiters = new Map<string, Set<() => void>>()
  /** Items in the pool (waiting or running), per account. */
  readonly #inPool = new Map<string, number>()
  #closing = false
  #noWait = false

  constructor(store: Store, options: ResolvedServerOptions, outbound: OutboundContext, events: JobEvents) {
    this.#store = store
    this.#options = options
    this.#outbound = outbound
    this.#events = events
    this.#queue = new PQueue({ concurrency: options.workers })
  }

  get stats(): { running: number; queuedItems: number; activeItems: number } {
    return { running: this.#running.size, queuedItems: this.#queue.size, activeItems: this.#queue.pending }
  }

  /** Runs again what a previous process left unfinished, or fails it when it already crashed too often. */
  async recover(): Promise<{ resumed: number; failed: number }> {
    let resumed = 0
    let failed = 0
    for (const job of this.#store.unfinishedJobs()) {
      if (job.attempts >= this.#options.maxJobAttempts) {
        await this.#finishFailed(
          job,
          `The server stopped ${job.attempts} times while running this job; it was given up. Submit the images again.`,
        )
        failed++
      } else {
        this.start(job.id)
        resumed++
      }
    }
    return { resumed, failed }
  }

  start(jobId: string): void {
    if (this.#closing || this.#running.has(jobId)) return
    const controller = new AbortController()
    const entry = { controller, done: Promise.resolve(), waitingItems: Number.POSITIVE_INFINITY }
    this.#running.set(jobId, entry)
    entry.done = this.#run(jobId, controller, entry)
      // A store fault must not become an unhandled rejection (that kills the process); the job stays persisted.
      .catch((error: unknown) => logJobError(jobId, error))
      .finally(() => this.#running.delete(jobId))
  }

  /** Resolves when the job ends, after `ms`, or when the server closes: whichever comes first. */
  waitFor(jobId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (this.#noWait || signal?.aborted) return resolve()
      let set = this.#waiters.get(jobId)
      if (!set) this.#waiters.set(jobId, (set = new Set()))
      const wake = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', wake)
        set.delete(wake)
        if (set.size === 0 && this.#waiters.get(jobId) === set) this.#waiters.delete(jobId)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      signal?.addEventListener('abort', wake, { once: true })
      set.add(wake)
    })
  }

  /** Wakes every long-poll and makes new ones answer at once, so that closing never waits on them. */
  stopLongPolls(): void {
    this.#noWait = true
    for (const set of [...this.#waiters.values()]) for (const wake of [...set]) wake()
  }

  /**
   * Lets running items finish (up to `closeTimeoutMs`), starts nothing new, then stops what is left:
   * those jobs keep their persisted state and run again after a restart.
   */
  async close(): Promise<void> {
    this.#closing = true
    this.#queue.pause()
    this.stopLongPolls()
    const drained = this.#queue.onPendingZero()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, this.#options.closeTimeoutMs)))])
    clearTimeout(timer)
    // Jobs whose items are all done are only settling: let them. The others stop and stay persisted.
    for (const { controller, waitingItems } of this.#running.values()) {
      if (waitingItems > 0) controller.abort(new ShutdownError('the server is closing'))
    }
    await Promise.allSettled([...this.#running.values()].map((r) => r.done))
    this.#queue.clear()
  }

  async #run(jobId: string, controller: AbortController, entry: { waitingItems: number }): Promise<void> {
    let job: JobRecord | undefined
    try {
      job = this.#store.startJob(jobId)
    } catch (error) {
      // Nothing was written yet: the job stays queued in the store and runs again after a restart.
      logJobError(jobId, error)
      return
    }
    if (!job || job.status === 'done' || job.status === 'failed') return
    const { signal } = controller
    // The clock starts when the job gets to work, not while its items wait behind other jobs' in the
    // pool: a long queue must not turn into 504s at its tail.
    let timeout: NodeJS.Timeout | undefined
    const armTimeout = (): void => {
      timeout ??= setTimeout(
        () => controller.abort(new JobTimeoutError(`The job did not finish within ${this.#options.jobTimeoutMs / 1000} s.`)),
        this.#options.jobTimeoutMs,
      )
    }
    const written: string[] = []
    let finished = false
    try {
      if (this.#options.jobDelayMs > 0) {
        // The test delay stands for slow work: it counts against the timeout.
        armTimeout()
        await abortable(this.#options.jobDelayMs, signal)
      }
      const engine = await (this.#options.engine ?? loadDefaultEngine())
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
      aborted.catch(() => {})
      entry.waitingItems = job.inputs.length
      const outcomes = await Promise.race([
        Promise.all(
          job.inputs.map((input) =>
            this.#enqueue(job.accountId, signal, () => {
              armTimeout()
              return processItem(this.#deps(engine), job, input, signal, written)
            }).finally(() => entry.waitingItems--),
          ),
        ),
        aborted,
      ])
      if (signal.aborted) throw signal.reason
      const finishedAt = this.#options.now()
      const expiresAt = finishedAt + this.#options.downloadTtlMs
      this.#store.finishJob(job.id, {
        status: 'done',
        result: outcomes.map((o) => o.item),
        downloads: outcomes.flatMap((o) => o.downloads.map((d) => ({ ...d, expiresAt }))),
        charge: outcomes.reduce((sum, o) => sum + o.charge, 0),
        finishedAt,
      })
      // Committed: from here on nothing may delete the outputs the finished job points to.
      finished = true
    } catch (error) {
      await Promise.allSettled(written.map((key) => this.#store.blobs.delete(key)))
      if (error instanceof ShutdownError || this.#closing) {
        // Kept in the store with its uploads: the next start runs it again, and a clean stop is no crash.
        try {
          this.#store.requeueJob(job.id)
        } catch {
          // The store is already closed: the job stays "running" and is still resumed after a restart.
        }
        return
      }
      const reason =
        error instanceof JobTimeoutError
          ? error.message
          : `The job failed on the server: ${error instanceof Error ? error.message : String(error)}`
      await this.#finishFailed(job, reason)
    } finally {
      clearTimeout(timeout)
    }
    if (finished) {
      await this.#store.blobs.deletePrefix(`uploads/${job.id}`).catch(() => {})
      this.#notify(job.id)
    }
  }

  /**
   * Fair share between accounts: an item's priority is minus the number of items its account already
   * has in the pool (waiting or running), so one account's backlog does not hold back another's first image.
   */
  #enqueue<T>(accountId: string, signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    const inPool = this.#inPool.get(accountId) ?? 0
    this.#inPool.set(accountId, inPool + 1)
    const release = (): void => {
      const left = (this.#inPool.get(accountId) ?? 1) - 1
      if (left > 0) this.#inPool.set(accountId, left)
      else this.#inPool.delete(accountId)
    }
    return this.#queue.add(task, { signal, priority: -inPool }).finally(release)
  }

  #deps(engine: EngineLike): ItemDeps {
    return { store: this.#store, options: this.#options, outbound: this.#outbound, engine }
  }

  async #finishFailed(job: JobRecord, reason: string): Promise<void> {
    try {
      this.#store.finishJob(job.id, { status: 'failed', error: reason, finishedAt: this.#options.now() })
    } catch {
      // The store is gone (closing): the job stays unfinished and is settled after a restart.
      return
    }
    await this.#store.blobs.deletePrefix(`uploads/${job.id}`).catch(() => {})
    this.#notify(job.id)
  }

  /** Wakes long-polls and starts the callback; the job is settled already, so a fault here is only logged. */
  #notify(jobId: string): void {
    const set = this.#waiters.get(jobId)
    if (set) for (const wake of [...set]) wake()
    try {
      const job = this.#store.getJob(jobId)
      if (job) this.#events.onFinished(job)
    } catch (error) {
      logJobError(jobId, error)
    }
  }
}
