/**
 * The bundler-agnostic pipeline. An adapter opens one `BuildSession` per build (or per output), hands it
 * the emitted image assets, writes back what comes out, and calls `finish()` (always, also on errors).
 *
 *   filter -> hash -> process-wide in-flight map -> cache -> (svgo | client) -> verify -> cache -> result
 *
 * Nothing here can lose an image: every failure path returns the original bytes with a reason.
 */
import { existsSync } from 'node:fs'
import PQueue from 'p-queue'
import { MegaOptimError } from '../client/errors.ts'
import type { ClientEvent, OptimizeOutcome, OptimizeParams } from '../client/types.ts'
import { cacheKey, ImageCache, sha256, type CachedOutcome } from './cache.ts'
import { kindFromName, type ImageKind } from '../contract/formats.ts'
import { createFilter, normalizeFileName, type FileFilter } from './filter.ts'
import { backendIdentity, backendLabel, openOptimizer, type RemoteOptimizer } from './optimizer.ts'
import type { ResolvedOptions } from './options.ts'
import {
  consoleLogger,
  formatFailures,
  formatTable,
  levelled,
  Progress,
  summarize,
  writeJsonReport,
  type BuildReport,
  type FileReport,
  type Logger,
} from './report.ts'
import { optimizeSvg, SVG_PRESET_ID } from './svg.ts'
import { truncationReason } from './integrity.ts'

export interface AssetInput {
  /** The path relative to the output directory, e.g. `assets/hero-3fa1.png`. */
  fileName: string
  data: Uint8Array
}

export interface AssetResult {
  fileName: string
  /** What to ship: the optimized bytes, or the original ones. */
  data: Uint8Array
  /** True when `data` differs from the input and must be written back. */
  changed: boolean
  /** A `.webp` sibling to emit as `${fileName}.webp`, or null. */
  webp: Uint8Array | null
  report: FileReport
}

/** Cache lookups and svgo runs at once. */
const LOCAL_CONCURRENCY = 16
/** Pruning walks the whole cache: once a day is plenty, and keeps warm rebuilds cheap. */
const PRUNE_INTERVAL_MS = 24 * 60 * 60 * 1000

/** The cache note that remembers which embedded engine produced the entries. */
const ENGINE_NOTE = 'embedded-engine'

interface Miss {
  key: string
  contentHash: string
  asset: AssetInput
  kind: ImageKind
  settle: (s: Shared) => void
}

/** An outcome that can be shared by every build in this process that meets the same bytes. */
type Shared = { result: CachedOutcome | { outcome: 'failed'; reason: string }; cached: boolean; fresh: boolean }

/**
 * Identical bytes met by concurrent builds in one process (SSR + client, several outputs) are processed
 * once: the key already holds the content hash, the options and the backend identity.
 */
const inFlight = new Map<string, Promise<Shared>>()

/** Error codes that say the image itself is the problem: worth remembering, not worth sending again. */
const PERMANENT_ITEM_ERRORS = new Set(['MEGAOPTIM_UNSUPPORTED_INPUT'])

export class BuildError extends MegaOptimError {
  override name = 'MegaOptimBuildError'
  constructor(message: string) {
    super('MEGAOPTIM_BUILD_FAILED', message)
  }
}

/** Finishes a session; a `failOnError` failure comes back as its message (for bundlers that collect errors). */
export async function finishCollectingFailure(session: BuildSession): Promise<string | null> {
  try {
    await session.finish()
    return null
  } catch (error) {
    if (error instanceof BuildError) return error.message
    throw error
  }
}

export interface SessionOptions {
  logger?: Logger
  /** Show a progress line when on a TTY. @default true */
  progress?: boolean
}

export class BuildSession {
  readonly options: ResolvedOptions
  private readonly logger: Logger
  private readonly filter: FileFilter
  private readonly cache: ImageCache | null
  /** The optimizer's identity in cache keys; for the embedded engine, refined by the engine version last seen. */
  private identity: string
  private identityKnown = false
  private readonly progress: Progress
  private readonly files: FileReport[] = []
  private optimizer: Promise<RemoteOptimizer> | null = null
  private tokensUsed = 0
  /** Advances the progress line as the client reports each image done. */
  private remoteTick: ((label: string) => void) | null = null
  private finished = false

  constructor(options: ResolvedOptions, sessionOptions: SessionOptions = {}) {
    this.options = options
    this.progress = new Progress((sessionOptions.progress ?? true) && options.logLevel === 'info')
    const logger = levelled(sessionOptions.logger ?? consoleLogger, options.logLevel)
    // A message must not land on the end of the progress line.
    this.logger = {
      info: (message) => {
        this.progress.clear()
        logger.info(message)
      },
      warn: (message) => {
        this.progress.clear()
        logger.warn(message)
      },
    }
    this.filter = createFilter(options)
    this.cache = options.cache ? new ImageCache(options.cache) : null
    this.identity = backendIdentity(options.backend)
  }

  /** Whether a file is one this session would optimize (include/exclude and known formats). */
  wants(fileName: string): boolean {
    return this.filter(fileName)
  }

  /** Optimizes the wanted assets among `assets`; returns a result for each of those (others are ignored). */
  async process(assets: AssetInput[]): Promise<AssetResult[]> {
    const wanted = assets.filter((a) => this.filter(a.fileName) && a.data.byteLength >= this.options.minSize && a.data.byteLength > 0)
    if (wanted.length === 0) return []
    await this.loadIdentity()
    const jobs = wanted.map((asset) => {
      const kind = kindFromName(normalizeFileName(asset.fileName))!
      const broken = truncationReason(kind, asset.data)
      const contentHash = sha256(asset.data)
      return { asset, kind, broken, contentHash, key: cacheKey(contentHash, this.fingerprint(kind), kind === 'svg' ? 'local:svgo' : this.identity) }
    })

    let done = 0
    // Counts what this session works on itself (cache lookups, svgo, the API), not duplicates.
    const tick = (label: string) => this.progress.update(++done, misses.length, label)
    const shared = new Map<string, Promise<Shared>>()
    const misses: Miss[] = []

    for (const job of jobs) {
      if (shared.has(job.key)) continue
      if (job.broken) {
        // Never sent: a cut-short file cannot be optimized, and the check costs nothing to repeat.
        shared.set(job.key, Promise.resolve({ result: { outcome: 'unprocessable', reason: job.broken }, cached: false, fresh: false }))
        continue
      }
      const existing = inFlight.get(job.key)
      if (existing) {
        // Another build in this process is on it: reuse its outcome, count it as not ours to pay for.
        shared.set(job.key, existing.then((s) => ({ ...s, cached: true, fresh: false })))
        continue
      }
      let settle!: (s: Shared) => void
      const promise = new Promise<Shared>((resolve) => (settle = resolve))
      inFlight.set(job.key, promise)
      void promise.finally(() => inFlight.delete(job.key))
      shared.set(job.key, promise)
      misses.push({ key: job.key, contentHash: job.contentHash, asset: job.asset, kind: job.kind, settle })
    }

    try {
      await this.resolveMisses(misses, tick)
    } finally {
      // Whatever went wrong above, nobody may wait forever on an unsettled promise.
      for (const miss of misses) miss.settle({ result: { outcome: 'failed', reason: 'not processed' }, cached: false, fresh: false })
    }

    const results: AssetResult[] = []
    for (const job of jobs) {
      const outcome = await shared.get(job.key)!
      const result = this.toResult(job.asset, outcome)
      this.files.push(result.report)
      results.push(result)
    }
    this.progress.clear()
    return results
  }

  /**
   * A result the adapter could not write out: the file keeps its original bytes (writes are atomic), and
   * the report and the summary say so.
   */
  writeFailed(fileName: string, what: 'image' | 'webp', error: unknown): void {
    const entry = this.files.find((f) => f.file === normalizeFileName(fileName))
    if (!entry) return
    if (what === 'webp') {
      entry.webpSize = null
      entry.note = `the WebP sibling could not be written: ${message(error)}`
    } else {
      Object.assign(entry, { optimizedSize: entry.originalSize, webpSize: null, error: `the optimized file could not be written: ${message(error)}` })
    }
  }

  /**
   * Renames files already processed, for bundlers that rename assets after optimizing them (webpack's
   * `realContentHash` puts the hash of the new bytes in the name): the report names what ships.
   */
  renameFiles(renamed: ReadonlyMap<string, string>): void {
    for (const file of this.files) {
      const to = renamed.get(file.file)
      if (to !== undefined) file.file = normalizeFileName(to)
    }
  }

  /** Ends the build: summary, JSON report, embedded server shutdown, cache pruning, `failOnError`. */
  async finish(): Promise<BuildReport> {
    if (this.finished) throw new Error('BuildSession.finish() called twice')
    this.finished = true
    this.progress.clear()
    let requests = 0
    let tokensLeft: number | null = null
    if (this.optimizer) {
      const optimizer = await this.optimizer.catch(() => null)
      if (optimizer) {
        requests = optimizer.requests()
        tokensLeft = optimizer.tokensLeft()
        await optimizer.close().catch((error: unknown) => this.logger.warn(`could not stop the optimizer cleanly: ${message(error)}`))
      }
    }
    const report = summarize(backendLabel(this.options.backend), this.files, { requests, tokensUsed: this.tokensUsed, tokensLeft })
    if (report.totals.files > 0) this.logger.info(formatTable(report))
    const failures = formatFailures(report)
    if (failures && !this.options.failOnError) this.logger.warn(failures)
    // A build that met no image (an SSR environment, a CSS-only output) must not blank the report another
    // build of the same project just wrote.
    if (this.options.report && (report.totals.files > 0 || !existsSync(this.options.report))) {
      try {
        await writeJsonReport(this.options.report, report)
      } catch (error) {
        this.logger.warn(`could not write the report to ${this.options.report}: ${message(error)}`)
      }
    }
    if (this.cache && this.options.cacheMaxAge !== false) {
      await this.cache.pruneAtMostEvery(PRUNE_INTERVAL_MS, this.options.cacheMaxAge).catch(() => 0)
    }
    if (failures && this.options.failOnError) {
      throw new BuildError(`[megaoptim] ${failures}\n(failOnError is on; set failOnError: false to ship the originals instead)`)
    }
    return report
  }

  private fingerprint(kind: ImageKind): Record<string, unknown> {
    if (kind === 'svg') return { svg: SVG_PRESET_ID }
    // Keyed on exactly what is sent, so no output-changing parameter can be left out of the key.
    return { ...this.params() }
  }

  /** For the embedded engine: the engine version this cache last saw, part of every key. */
  private async loadIdentity(): Promise<void> {
    if (this.identityKnown) return
    this.identityKnown = true
    if (this.options.backend.kind !== 'embedded' || !this.cache) return
    const note = await this.cache.readNote(ENGINE_NOTE)
    if (typeof note?.engine === 'string') this.identity = backendIdentity(this.options.backend, note.engine)
  }

  /**
   * After the embedded server answered: if its engine is not the one the cache last saw, this build's
   * results are stored under the new identity, and the next build looks them up there.
   */
  private async refreshIdentity(optimizer: RemoteOptimizer): Promise<void> {
    if (this.options.backend.kind !== 'embedded' || !this.cache) return
    const engine = await optimizer.engineVersion()
    if (!engine) return
    const identity = backendIdentity(this.options.backend, engine)
    if (identity === this.identity) return
    this.identity = identity
    await this.cache.writeNote(ENGINE_NOTE, { engine, package: backendIdentity(this.options.backend) }).catch(() => {})
  }

  private async resolveMisses(misses: Miss[], tick: (label: string) => void): Promise<void> {
    const remote: Miss[] = []
    // Bounded: a big site has thousands of images, and each lookup reads a whole entry.
    const local = new PQueue({ concurrency: LOCAL_CONCURRENCY })
    await local.addAll(
      misses.map((miss) => async () => {
        const hit = this.cache ? await this.cache.get(miss.key).catch(() => null) : null
        if (hit) {
          tick(`${baseName(miss.asset.fileName)} from cache`)
          miss.settle({ result: hit, cached: true, fresh: false })
        } else if (miss.kind === 'svg') {
          miss.settle(await this.svg(miss.key, miss.asset))
          tick(`${baseName(miss.asset.fileName)} svgo`)
        } else {
          remote.push(miss)
        }
      }),
    )
    if (remote.length === 0) return

    let outcomes: OptimizeOutcome[]
    this.remoteTick = tick
    try {
      const optimizer = await this.openOptimizer()
      outcomes = await optimizer.optimize(
        remote.map((m) => ({ name: baseName(m.asset.fileName), data: m.asset.data })),
        this.params(),
      )
      await this.refreshIdentity(optimizer)
    } catch (error) {
      this.remoteTick = null
      const reason = message(error)
      for (const miss of remote) miss.settle({ result: { outcome: 'failed', reason }, cached: false, fresh: false })
      return
    }
    await Promise.all(
      remote.map(async (miss, index) => {
        const outcome = outcomes[index]
        const key = cacheKey(miss.contentHash, this.fingerprint(miss.kind), this.identity)
        miss.settle(await this.store(key, miss.asset, outcome))
      }),
    )
    this.remoteTick = null
  }

  private async svg(key: string, asset: AssetInput): Promise<Shared> {
    let result: CachedOutcome
    try {
      const data = await optimizeSvg(asset.data)
      result = data ? { outcome: 'optimized', data, webp: null } : { outcome: 'no-gain', webp: null }
    } catch (error) {
      // svgo's parse errors quote the markup around the problem: keep the report readable.
      result = { outcome: 'unprocessable', reason: `svgo could not parse it: ${message(error).split('\n')[0]!.slice(0, 200)}` }
    }
    await this.remember(key, result)
    return { result, cached: false, fresh: true }
  }

  /** Turns a client outcome into a shared one, caching what is final (never transient failures). */
  private async store(key: string, asset: AssetInput, outcome: OptimizeOutcome | undefined): Promise<Shared> {
    if (!outcome) return { result: { outcome: 'failed', reason: 'the client returned no outcome for it' }, cached: false, fresh: false }
    let result: CachedOutcome
    if (outcome.status === 'optimized') {
      this.tokensUsed++
      // A result cut short in transit or by a faulty server is not remembered: the next build asks again.
      const broken = truncationReason(kindFromName(normalizeFileName(asset.fileName))!, outcome.data)
      if (broken) return { result: { outcome: 'failed', reason: `the optimized result was unusable (${broken})` }, cached: false, fresh: false }
      const smaller = outcome.data.byteLength > 0 && outcome.data.byteLength < asset.data.byteLength
      result = smaller ? { outcome: 'optimized', data: outcome.data, webp: outcome.webp } : { outcome: 'no-gain', webp: outcome.webp }
    } else if (outcome.status === 'no-gain') {
      // A compatible server may say why (`reason`); the hosted API never does.
      const reason = (outcome as { reason?: unknown }).reason
      result = typeof reason === 'string' && reason ? { outcome: 'no-gain', webp: null, reason } : { outcome: 'no-gain', webp: null }
    } else if (PERMANENT_ITEM_ERRORS.has(outcome.error.code)) {
      result = { outcome: 'unprocessable', reason: withoutName(outcome.error.message, outcome.name) }
    } else {
      return { result: { outcome: 'failed', reason: withoutName(outcome.error.message, outcome.name) }, cached: false, fresh: false }
    }
    await this.remember(key, result)
    return { result, cached: false, fresh: true }
  }

  private async remember(key: string, result: CachedOutcome): Promise<void> {
    if (!this.cache) return
    try {
      await this.cache.set(key, result)
    } catch (error) {
      this.logger.warn(`could not write to the cache in ${this.cache.dir}: ${message(error)} (the build goes on)`)
    }
  }

  private params(): OptimizeParams {
    const o = this.options
    return {
      compression: o.compression,
      webp: o.webp,
      keepExif: o.keepExif,
      cmykToRgb: o.cmykToRgb,
      maxWidth: o.maxWidth,
      maxHeight: o.maxHeight,
    }
  }

  private openOptimizer(): Promise<RemoteOptimizer> {
    this.optimizer ??= openOptimizer({
      backend: this.options.backend,
      concurrency: this.options.concurrency,
      rateLimit: this.options.rateLimit,
      onEvent: (event: ClientEvent) => {
        if (event.type === 'done') this.remoteTick?.(`${event.name} ${event.outcome === 'optimized' ? 'optimized' : event.outcome === 'no-gain' ? 'kept' : 'failed'}`)
      },
      onEmbeddedStart: (endpoint) =>
        this.logger.info(`no API key: optimizing with the embedded engine at ${endpoint} (set MEGAOPTIM_API_KEY to use the MegaOptim API)`),
    })
    return this.optimizer
  }

  private toResult(asset: AssetInput, shared: Shared): AssetResult {
    const originalSize = asset.data.byteLength
    const file = normalizeFileName(asset.fileName)
    const keep = (error: string | null, webp: Uint8Array | null = null, note: string | null = null): AssetResult => {
      const sibling = this.options.webp && webp && webp.byteLength < originalSize ? webp : null
      return {
        fileName: asset.fileName,
        data: asset.data,
        changed: false,
        webp: sibling,
        report: { file, originalSize, optimizedSize: originalSize, cached: shared.cached, webpSize: sibling?.byteLength ?? null, error, note },
      }
    }
    const r = shared.result
    if (r.outcome === 'failed' || r.outcome === 'unprocessable') return keep(r.reason)
    const webp = r.webp && truncationReason('webp', r.webp) === null ? r.webp : null
    if (r.outcome === 'no-gain') return keep(null, webp, r.reason ?? null)
    // Whatever the source of the bytes (a server, the cache) said: never ship something larger, of
    // another format, or cut short.
    if (r.data.byteLength >= originalSize) return keep('the optimized result was not smaller than the original', webp)
    const broken = truncationReason(kindFromName(file)!, r.data)
    if (broken) return keep(`the optimized result was unusable (${broken})`, webp)
    if (!this.enoughSavings(originalSize, r.data.byteLength)) return keep(null, webp, 'saved less than minSavings')
    const sibling = this.options.webp && webp && webp.byteLength < r.data.byteLength ? webp : null
    return {
      fileName: asset.fileName,
      data: r.data,
      changed: true,
      webp: sibling,
      report: { file, originalSize, optimizedSize: r.data.byteLength, cached: shared.cached, webpSize: sibling?.byteLength ?? null, error: null, note: null },
    }
  }

  private enoughSavings(original: number, optimized: number): boolean {
    const min = this.options.minSavings
    const saved = original - optimized
    return min.unit === 'bytes' ? saved >= min.value : (saved / original) * 100 >= min.value
  }
}

/** The report names the file already: drop the client's leading `name: `. */
function withoutName(text: string, name: string): string {
  return text.startsWith(`${name}: `) ? text.slice(name.length + 2) : text
}

function baseName(fileName: string): string {
  const name = normalizeFileName(fileName)
  return name.slice(name.lastIndexOf('/') + 1)
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
