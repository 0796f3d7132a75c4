import { failedItem, processItem, type ItemDeps } from './item.ts'
import { serverLog } from './log.ts'
import type { EngineLike, ResolvedServerOptions } from './options.ts'
import type { OutboundContext } from './outbound.ts'
import { PixelBudget } from './pixel-budget.ts'
import { withResultCache } from './result-cache.ts'
import type { ClaimedItem, ItemOutcome, JobRecord, Store } from './store/types.ts'

/** The job's items ran longer than `jobTimeoutMs` in all: it fails with code 504. */
class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError'
}

/** The server is closing: the item goes back to waiting (SQLite keeps it) and runs again after a restart. */
class ShutdownError extends Error {
  override readonly name = 'ShutdownError'
}

/** Another item of the job failed it: the others stop. */
class JobFailedError extends Error {
  override readonly name = 'JobFailedError'
}

export interface JobEvents {
  /** Called once per job that reached `done` or `failed`. */
  onFinished(job: JobRecord): void
  /** The engine images run on (the server's engine threads, or the one its options name). */
  engine(): Promise<EngineLike>
}

/**
 * What the runner keeps for a job with items in this process. The job's clock runs only while one of its
 * items is being worked on, never while they wait their turn: a busy server must not turn its queue into
 * 504s, and a job is given `jobTimeoutMs` of work however its items interleave with other accounts'.
 */
interface JobControl {
  controller: AbortController
  /** Items claimed by a worker (reading, waiting for the budget or running). */
  claimed: number
  /** Items being worked on (the clock runs while > 0). */
  working: number
  workedMs: number
  since: number
  timer: NodeJS.Timeout | undefined
}

const blobsOf = (outcome: ItemOutcome | null): string[] => outcome?.downloads.map((d) => d.blob) ?? []

/**
 * Runs jobs image by image on `workers` slots. What runs next is the store's decision
 * (`Store.claimNextItem`: a fair share per account, then the oldest job), so every store backend
 * schedules alike and a restart resumes exactly the images that had not finished. The workers share a
 * pixel budget, each image has a time budget, and a job's tokens are settled when its last image ends.
 */
export class JobRunner {
  readonly #store: Store
  readonly #options: ResolvedServerOptions
  readonly #outbound: OutboundContext
  readonly #events: JobEvents
  readonly #budget: PixelBudget
  #free: number
  readonly #inFlight = new Set<Promise<void>>()
  readonly #jobs = new Map<string, JobControl>()
  readonly #waiters = new Map<string, Set<() => void>>()
  #closing = false
  #noWait = false
  #pumping = false
  #pumpAgain = false
  /** Replicas sharing the store: what other processes finish or queue wakes this one too. */
  readonly #unwatch: (() => void) | undefined

  constructor(store: Store, options: ResolvedServerOptions, outbound: OutboundContext, events: JobEvents) {
    this.#store = store
    this.#options = options
    this.#outbound = outbound
    this.#events = events
    this.#budget = new PixelBudget(options.pixelBudget)
    this.#free = options.workers
    this.#unwatch = store.watch?.({ jobFinished: (id) => this.#wake(id), workQueued: () => this.#pump() })
  }

  async stats(): Promise<{
    running: number
    queuedItems: number
    activeItems: number
    pixels: { capacity: number; used: number; peak: number; waiting: number }
  }> {
    let running = 0
    for (const control of this.#jobs.values()) if (control.claimed > 0) running++
    let queuedItems = 0
    try {
      queuedItems = await this.#store.countWaitingItems()
    } catch {
      // The store is closing: nothing to report.
    }
    return { running, queuedItems, activeItems: this.#inFlight.size, pixels: this.#budget.stats }
  }

  /**
   * After a restart: the images a crash interrupted wait again (their started runs stay counted) and the
   * unfinished jobs resume. An image that already stopped the server `maxItemTries` times is given up
   * when its turn comes (`success: 0`); the job's other images still run.
   */
  async recover(): Promise<{ resumed: number; givenUp: number }> {
    await this.#store.resetInterruptedItems()
    let resumed = 0
    let givenUp = 0
    for (const job of await this.#store.unfinishedJobs()) {
      resumed++
      for (const item of await this.#store.jobItems(job.id)) {
        if (item.state !== 'done' && item.tries >= this.#options.maxItemTries) givenUp++
      }
    }
    this.#pump()
    return { resumed, givenUp }
  }

  /** A job was submitted: give free workers something to do. */
  start(_jobId?: string): void {
    this.#pump()
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
      // Another process may have finished the job between the caller's look and this wait: look again.
      if (this.#store.watch) {
        void Promise.resolve(this.#store.getJob(jobId)).then(
          (job) => (!job || job.status === 'done' || job.status === 'failed') && wake(),
          () => {},
        )
      }
    })
  }

  #wake(jobId: string): void {
    const set = this.#waiters.get(jobId)
    if (set) for (const wake of [...set]) wake()
  }

  /** Wakes every long-poll and makes new ones answer at once, so that closing never waits on them. */
  stopLongPolls(): void {
    this.#noWait = true
    for (const set of [...this.#waiters.values()]) for (const wake of [...set]) wake()
  }

  /**
   * Claims nothing new, lets running images finish (up to `closeTimeoutMs`), then stops the rest: those
   * go back to waiting, uncounted, and run after a restart.
   */
  async close(): Promise<void> {
    this.#closing = true
    this.#unwatch?.()
    this.stopLongPolls()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.#inFlight]),
      new Promise((r) => (timer = setTimeout(r, this.#options.closeTimeoutMs))),
    ])
    clearTimeout(timer)
    for (const control of this.#jobs.values()) control.controller.abort(new ShutdownError('the server is closing'))
    await Promise.allSettled([...this.#inFlight])
  }

  /** Claims work for the free workers; one claiming loop at a time, run again if asked meanwhile. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true
      return
    }
    this.#pumping = true
    this.#pumpAgain = false
    void this.#claimWhileFree().finally(() => {
      this.#pumping = false
      if (this.#pumpAgain) this.#pump()
    })
  }

  async #claimWhileFree(): Promise<void> {
    while (!this.#closing && this.#free > 0) {
      let claim: ClaimedItem | undefined
      try {
        claim = await this.#store.claimNextItem()
      } catch (error) {
        // Nothing was claimed: the items stay waiting in the store and run on the next pump or restart.
        serverLog(`claiming the next image failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
        return
      }
      if (!claim) return
      this.#free--
      const run: Promise<void> = this.#runItem(claim)
        .catch((error: unknown) => serverLog(`job ${claim.job.id}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`))
        .finally(() => {
          this.#inFlight.delete(run)
          this.#free++
          this.#pump()
        })
      this.#inFlight.add(run)
    }
  }

  #control(jobId: string): JobControl {
    let control = this.#jobs.get(jobId)
    if (!control) {
      control = { controller: new AbortController(), claimed: 0, working: 0, workedMs: 0, since: 0, timer: undefined }
      this.#jobs.set(jobId, control)
    }
    return control
  }

  #clockStart(control: JobControl): void {
    if (control.working++ > 0) return
    control.since = performance.now()
    const left = Math.max(0, this.#options.jobTimeoutMs - control.workedMs)
    control.timer = setTimeout(
      () => control.controller.abort(new JobTimeoutError(`The job did not finish within ${this.#options.jobTimeoutMs / 1000} s.`)),
      left,
    )
  }

  #clockStop(control: JobControl): void {
    if (--control.working > 0) return
    clearTimeout(control.timer)
    control.workedMs += performance.now() - control.since
  }

  async #runItem(claim: ClaimedItem): Promise<void> {
    const { job, index, input } = claim
    const control = this.#control(job.id)
    const { signal } = control.controller
    control.claimed++
    const written: string[] = []
    try {
      let outcome: ItemOutcome
      let settled: Promise<void> = Promise.resolve()
      if (claim.tries >= this.#options.maxItemTries) {
        outcome = failedItem(
          input.name,
          0,
          `The server stopped ${claim.tries} times while optimizing ${input.name}; it was given up: keep the original (no token was charged).`,
        )
      } else {
        signal.throwIfAborted()
        const engine = await this.#events.engine()
        const deps: ItemDeps = {
          store: this.#store,
          options: this.#options,
          outbound: this.#outbound,
          // Replicas share a result cache: the account's same image with the same settings is not encoded twice.
          engine: withResultCache(engine, this.#store, job.accountId, this.#options.dedupeMs, this.#options.now),
          begin: async (pixels) => {
            const release = await this.#budget.acquire(pixels, signal)
            // A try counts from here only: an image that waited, or read its bytes, and was then stopped by a crash never ran.
            await this.#store.startItem(job.id, index)
            this.#clockStart(control)
            let ended = false
            return () => {
              if (ended) return
              ended = true
              this.#clockStop(control)
              release()
            }
          },
        }
        ;({ settled, ...outcome } = await processItem(deps, job, input, signal, written))
      }
      const left = await this.#store.completeItem(job.id, index, outcome)
      if (left === -1) {
        // The job failed meanwhile (or, with replicas, another one took the image over after this one's
        // lease expired): what this image wrote has nothing pointing to it.
        await Promise.allSettled(written.map((key) => this.#store.blobs.delete(key)))
      } else if (left === 0) {
        await this.#finishDone(job.id)
      }
      // The worker stays taken until the engine has really stopped (an image past its time budget).
      await settled
    } catch (error) {
      await Promise.allSettled(written.map((key) => this.#store.blobs.delete(key)))
      if (error instanceof ShutdownError || this.#closing) {
        try {
          await this.#store.releaseItem(job.id, index)
        } catch {
          // The store is already closed: the item stays claimed and waits again after a restart.
        }
        return
      }
      if (error instanceof JobFailedError) return
      const reason =
        error instanceof JobTimeoutError
          ? error.message
          : `The job failed on the server: ${error instanceof Error ? error.message : String(error)}`
      if (!(error instanceof JobTimeoutError)) serverLog(`job ${job.id}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
      control.controller.abort(new JobFailedError(reason))
      await this.#finishFailed(job.id, reason)
    } finally {
      control.claimed--
    }
  }

  async #finishDone(jobId: string): Promise<void> {
    const outcomes = (await this.#store.jobItems(jobId)).map((i) => i.outcome!)
    const finishedAt = this.#options.now()
    const expiresAt = finishedAt + this.#options.downloadTtlMs
    await this.#store.finishJob(jobId, {
      status: 'done',
      result: outcomes.map((o) => o.item),
      downloads: outcomes.flatMap((o) => o.downloads.map((d) => ({ ...d, expiresAt }))),
      charge: outcomes.reduce((sum, o) => sum + o.charge, 0),
      finishedAt,
    })
    // Committed: from here on nothing may delete the outputs the finished job points to.
    this.#dropControl(jobId)
    await this.#store.blobs.deletePrefix(`uploads/${jobId}`).catch(() => {})
    await this.#notify(jobId)
  }

  async #finishFailed(jobId: string, reason: string): Promise<void> {
    let outputs: string[]
    try {
      const job = await this.#store.getJob(jobId)
      // Another image of the job failed it first: it is settled and notified once.
      if (!job || job.status === 'done' || job.status === 'failed') return
      outputs = (await this.#store.jobItems(jobId)).flatMap((i) => blobsOf(i.outcome))
      await this.#store.finishJob(jobId, { status: 'failed', error: reason, finishedAt: this.#options.now() })
    } catch {
      // The store is gone (closing): the job stays unfinished and is settled after a restart.
      return
    }
    this.#dropControl(jobId)
    await Promise.allSettled(outputs.map((key) => this.#store.blobs.delete(key)))
    await this.#store.blobs.deletePrefix(`uploads/${jobId}`).catch(() => {})
    await this.#notify(jobId)
  }

  #dropControl(jobId: string): void {
    const control = this.#jobs.get(jobId)
    if (control) clearTimeout(control.timer)
    this.#jobs.delete(jobId)
  }

  /** Wakes long-polls and starts the callback; the job is settled already, so a fault here is only logged. */
  async #notify(jobId: string): Promise<void> {
    this.#wake(jobId)
    try {
      const job = await this.#store.getJob(jobId)
      if (job) this.#events.onFinished(job)
    } catch (error) {
      serverLog(`job ${jobId}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    }
  }
}
