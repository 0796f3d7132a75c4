import PQueue from 'p-queue'
import type { EngineParams } from '../engine/types.ts'
import { loadDefaultEngine } from './engine.ts'
import { generateCapability } from './keys.ts'
import { CONTENT_TYPES, safeDownloadName } from './naming.ts'
import type { EngineLike, ResolvedServerOptions } from './options.ts'
import { fetchImage, FetchImageError, type OutboundContext } from './outbound.ts'
import type { DownloadRecord, JobInput, JobRecord, ResultItem, Store } from './store/types.ts'

/** The job took longer than `jobTimeoutMs`: it fails with code 504. */
class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError'
}

/** The server is closing: the job stays persisted (SQLite) and runs again after a restart. */
class ShutdownError extends Error {
  override readonly name = 'ShutdownError'
}

interface ItemOutcome {
  item: ResultItem
  downloads: Omit<DownloadRecord, 'expiresAt'>[]
  charge: number
}

const percent = (saved: number, original: number): number =>
  original === 0 ? 0 : Math.round((saved / original) * 10000) / 100

function failedItem(fileName: string, originalSize: number, error: string): ItemOutcome {
  return {
    item: {
      success: 0,
      file_name: fileName,
      original_size: originalSize,
      optimized_size: originalSize,
      saved_bytes: 0,
      saved_percent: 0,
      url: null,
      webp: null,
      error,
    },
    downloads: [],
    charge: 0,
  }
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
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>()
  readonly #waiters = new Map<string, Set<() => void>>()
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
    const done = this.#run(jobId, controller).finally(() => this.#running.delete(jobId))
    this.#running.set(jobId, { controller, done })
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
    for (const { controller } of this.#running.values()) controller.abort(new ShutdownError('the server is closing'))
    await Promise.allSettled([...this.#running.values()].map((r) => r.done))
    this.#queue.clear()
  }

  async #run(jobId: string, controller: AbortController): Promise<void> {
    const job = this.#store.startJob(jobId)
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
      const outcomes = await Promise.race([
        Promise.all(
          job.inputs.map((input) =>
            this.#queue.add(
              () => {
                armTimeout()
                return this.#processItem(engine, job, input, signal, written)
              },
              { signal },
            ),
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
      await this.#store.blobs.deletePrefix(`uploads/${job.id}`).catch(() => {})
      this.#notify(job.id)
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

  #notify(jobId: string): void {
    const set = this.#waiters.get(jobId)
    if (set) for (const wake of [...set]) wake()
    const job = this.#store.getJob(jobId)
    if (job) this.#events.onFinished(job)
  }

  async #processItem(
    engine: EngineLike,
    job: JobRecord,
    input: JobInput,
    signal: AbortSignal,
    written: string[],
  ): Promise<ItemOutcome> {
    signal.throwIfAborted()
    let bytes: Uint8Array
    if (input.kind === 'file') {
      const stored = await this.#store.blobs.get(input.blob)
      if (!stored) throw new Error(`the upload of ${input.name} is missing from the store`)
      bytes = stored
    } else {
      try {
        bytes = await fetchImage(this.#outbound, input.url, {
          maxBytes: this.#options.maxFileSize,
          httpUser: job.params.httpUser,
          httpPass: job.params.httpPass,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.#options.fetchTimeoutMs)]),
        })
      } catch (error) {
        signal.throwIfAborted()
        if (error instanceof FetchImageError) return failedItem(input.name, 0, error.message)
        throw error
      }
    }
    const size = bytes.length
    if (size === 0) return failedItem(input.name, 0, `${input.name} is empty (0 bytes): send the image's bytes.`)
    if (engine.sniffFormat(bytes) === null) {
      return failedItem(
        input.name,
        size,
        `${input.name} is not a JPEG, PNG, GIF or WebP image (judged from its bytes, not its name or Content-Type).`,
      )
    }
    const params: EngineParams = {
      compression: job.params.compression,
      webp: job.params.webp,
      cmykToRgb: job.params.cmykToRgb,
      keepExif: job.params.keepExif,
      maxWidth: job.params.maxWidth,
      maxHeight: job.params.maxHeight,
    }
    let result
    try {
      result = await engine.optimizeImage(bytes, params, { signal })
    } catch (error) {
      signal.throwIfAborted()
      // Bad input is a per-item failure; anything else is a server fault and fails the job (504).
      if (engine.isEngineError(error)) return failedItem(input.name, size, error.message)
      throw error
    }
    signal.throwIfAborted()
    const optimizedSize = result.data.length
    const saved = size - optimizedSize
    const savedPercent = percent(saved, size)
    // The contract: savings of 5% or less are not an optimization and cost nothing. Compared exactly
    // (saved / size <= 5%), not on the rounded percentage.
    if (saved * 20 <= size) {
      return failedItem(
        input.name,
        size,
        `Saved ${savedPercent}% only (5% or less is not counted as optimized): keep the original; no token was charged.`,
      )
    }
    const dir = generateCapability()
    const name = safeDownloadName(input.name)
    const key = `out/${dir}/${name}`
    await this.#store.blobs.put(key, result.data)
    written.push(key)
    const downloads: ItemOutcome['downloads'] = [
      { dir, name, blob: key, size: optimizedSize, contentType: CONTENT_TYPES[result.format], jobId: job.id },
    ]
    let webp: ResultItem['webp'] = null
    if (job.params.webp && result.webp && result.webp.length > 0 && result.webp.length < size) {
      const webpKey = `${key}.webp`
      await this.#store.blobs.put(webpKey, result.webp)
      written.push(webpKey)
      downloads.push({
        dir,
        name: `${name}.webp`,
        blob: webpKey,
        size: result.webp.length,
        contentType: CONTENT_TYPES.webp,
        jobId: job.id,
      })
      webp = {
        url: `/image/${dir}/${encodeURIComponent(name)}.webp`,
        optimized_size: result.webp.length,
        saved_bytes: size - result.webp.length,
        saved_percent: percent(size - result.webp.length, size),
      }
    }
    return {
      item: {
        success: 1,
        file_name: input.name,
        original_size: size,
        optimized_size: optimizedSize,
        saved_bytes: saved,
        saved_percent: savedPercent,
        url: `/image/${dir}/${encodeURIComponent(name)}`,
        webp,
      },
      downloads,
      // One token per optimized image; the WebP version is free.
      charge: 1,
    }
  }
}
