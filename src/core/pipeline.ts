/**
 * The bundler-agnostic pipeline. An adapter opens one `BuildSession` per build (or per output), hands it
 * the emitted image assets, writes back what comes out, and calls `finish()` (always, also on errors).
 *
 *   filter -> hash -> process-wide in-flight map -> cache -> (svgo | client) -> verify -> cache -> result
 *
 * Nothing here can lose an image: every failure path returns the original bytes with a reason.
 */
import { existsSync } from 'node:fs'
import { MegaOptimError } from '../client/errors.ts'
import type { ClientEvent, OptimizeOutcome, OptimizeParams } from '../client/types.ts'
import { cacheKey, ImageCache, ownOutputKey, sha256, type CachedOutcome } from './cache.ts'
import { headerPixels, kindFromName, type ImageKind } from '../contract/formats.ts'
import { createFilter, normalizeFileName, type FileFilter } from './filter.ts'
import { backendIdentity, backendLabel, openOptimizer, type RemoteOptimizer } from './optimizer.ts'
import type { Backend, ResolvedOptions } from './options.ts'
import {
  consoleLogger,
  formatFailures,
  formatReferences,
  formatTable,
  levelled,
  Progress,
  summarize,
  writeJsonReport,
  type ApiUse,
  type BuildReport,
  type FileReport,
  type Logger,
  type ReferenceCounts,
} from './report.ts'
import { optimizeSvg, SVG_PRESET_ID } from './svg.ts'
import { DigestMemo } from './rewrite/content-hash.ts'
import type { KnownDigests } from './rewrite/names.ts'
import { createTextureMatcher } from './textures.ts'
import { truncationReason } from './integrity.ts'
import { ApiWait } from './api-wait.ts'
import { seconds } from '../client/duration.ts'

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
  /** SHA-256 of the input's bytes and of `data` (null when not known): what digests are remembered by. */
  sha256: { before: string; after: string | null }
}

/** Cache lookups and svgo runs at once. */
const LOCAL_CONCURRENCY = 16
/** How long cache lookups may hold the event loop before giving it a turn. */
const YIELD_EVERY_MS = 20
/** Pruning walks the whole cache: once a day is plenty, and keeps warm rebuilds cheap. */
const PRUNE_INTERVAL_MS = 24 * 60 * 60 * 1000

/** The cache note that remembers which embedded engine produced the entries. */
const ENGINE_NOTE = 'embedded-engine'
/** The cache note that remembers each backend's last reported token balance. */
const BALANCE_NOTE = 'token-balance'
/** The cache note that remembers the digests that names hold (see rewrite/content-hash.ts). */
const DIGEST_NOTE = 'name-digests'

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

/**
 * The digests memo of each cache directory, shared by the builds of this process (Vite's environments, a
 * watch mode's rebuilds): one build's note must not drop what another noted.
 */
const digestMemos = new Map<string, Promise<DigestMemo>>()

/** Error codes that say the image itself is the problem: worth remembering, not worth sending again. */
const PERMANENT_ITEM_ERRORS = new Set(['MEGAOPTIM_UNSUPPORTED_INPUT'])

/** With `fallback: 'embedded'`: the API could not be reached, was down or out of tokens. A bad key is not one. */
const API_UNAVAILABLE = new Set([
  'MEGAOPTIM_NETWORK', 'MEGAOPTIM_TIMEOUT', 'MEGAOPTIM_DEADLINE', 'MEGAOPTIM_SERVER', 'MEGAOPTIM_JOB_FAILED',
  'MEGAOPTIM_INVALID_RESPONSE', 'MEGAOPTIM_DOWNLOAD', 'MEGAOPTIM_RATE_LIMITED', 'MEGAOPTIM_TOKENS_EXHAUSTED',
])

function apiUnavailable(outcome: OptimizeOutcome | undefined): boolean {
  if (outcome?.status !== 'failed') return false
  const { code, apiCode } = outcome.error
  return API_UNAVAILABLE.has(code) || (code === 'MEGAOPTIM_CIRCUIT_OPEN' && apiCode === 455)
}

/** Why a result that is not kept says so; the marker of bytes this package produced. */
const OWN_OUTPUT_NOTE = 'already optimized by megaoptim (its own output)'

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
  /** Show progress: a rewritten line on a TTY, a plain line every `progressEveryMs` elsewhere. @default true */
  progress?: boolean
  /** How often a line says how the API work goes while it lasts. @default 10_000 */
  progressEveryMs?: number
}

/** Error codes that mean the API did not answer in time (as opposed to answering "no"). */
const NO_ANSWER = new Set(['MEGAOPTIM_DEADLINE', 'MEGAOPTIM_TIMEOUT'])

export class BuildSession {
  readonly options: ResolvedOptions
  readonly #logger: Logger
  readonly #filter: FileFilter
  /** Data textures (normal, roughness, ... maps) go with `compression: 'lossless'`. */
  readonly #isTexture: (fileName: string) => boolean
  readonly #cache: ImageCache | null
  /** The optimizer's identity in cache keys; for the embedded engine, refined by the engine version last seen. */
  #identity: string
  /** Read once; concurrent `process()` calls (Vite's public images beside the bundle's) wait on the same read. */
  #identityLoaded: Promise<void> | null = null
  readonly #progress: Progress
  readonly #files: FileReport[] = []
  #optimizer: Promise<RemoteOptimizer> | null = null
  /** With `fallback: 'embedded'`, the embedded engine, started only when the API fails. */
  #fallbackOptimizer: Promise<RemoteOptimizer> | null = null
  /** The fallback's identity in cache keys: what it produces is never taken for the API's work. */
  #fallbackIdentity = backendIdentity({ kind: 'embedded' })
  #tokensUsed = 0
  /** The build's one budget for waiting on the API, shared by every `process()` call. */
  readonly #wait: ApiWait
  readonly #showProgress: boolean
  /** Requests the client tried again in this build. */
  #retries = 0
  /** Images that kept their original because the API did not answer in time. */
  #unanswered = 0
  /** Images sent to the API in this build. */
  #sent = 0
  /** Advances the progress line as the client reports each image done. */
  #remoteTick: ((label: string) => void) | null = null
  #finished = false
  /** Issue 10: references the adapter rewrote and names it changed (see noteReferences). */
  readonly #references: ReferenceCounts = { rewritten: 0, renamed: 0 }
  /** Digests of the bytes of images and results, read from the cache on the first rename. */
  #digests: Promise<DigestMemo> | null = null

  constructor(options: ResolvedOptions, sessionOptions: SessionOptions = {}) {
    this.options = options
    this.#showProgress = sessionOptions.progress ?? true
    this.#progress = new Progress(this.#showProgress && options.logLevel === 'info')
    this.#wait = new ApiWait(options.timeout, sessionOptions.progressEveryMs ?? 10_000)
    const logger = levelled(sessionOptions.logger ?? consoleLogger, options.logLevel)
    // A message must not land on the end of the progress line.
    this.#logger = {
      info: (message) => {
        this.#progress.clear()
        logger.info(message)
      },
      warn: (message) => {
        this.#progress.clear()
        logger.warn(message)
      },
    }
    this.#filter = createFilter(options)
    this.#isTexture = createTextureMatcher(options.textures)
    this.#cache = options.cache ? new ImageCache(options.cache) : null
    this.#identity = backendIdentity(options.backend)
  }

  /** Whether a file is one this session would optimize (include/exclude and known formats). */
  wants(fileName: string): boolean {
    return this.#filter(fileName)
  }

  /** Optimizes the wanted assets among `assets`; returns a result for each of those (others are ignored). */
  async process(assets: AssetInput[]): Promise<AssetResult[]> {
    const wanted = assets.filter((a) => this.#filter(a.fileName) && a.data.byteLength >= this.options.minSize && a.data.byteLength > 0)
    if (wanted.length === 0) return []
    await this.#loadIdentity()
    const jobs = wanted.map((asset) => {
      const kind = kindFromName(normalizeFileName(asset.fileName))!
      const broken = truncationReason(kind, asset.data)
      const contentHash = sha256(asset.data)
      return { asset, kind, broken, contentHash, key: cacheKey(contentHash, this.#fingerprint(kind, asset.fileName), kind === 'svg' ? 'local:svgo' : this.#identity) }
    })

    let done = 0
    // Counts what this session works on itself (cache lookups, svgo, the API), not duplicates.
    const tick = (label: string) => this.#progress.update(++done, misses.length, label)
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
      await this.#resolveMisses(misses, tick)
    } finally {
      // Whatever went wrong above, nobody may wait forever on an unsettled promise.
      for (const miss of misses) miss.settle({ result: { outcome: 'failed', reason: 'not processed' }, cached: false, fresh: false })
    }

    const results: AssetResult[] = []
    for (const job of jobs) {
      const outcome = await shared.get(job.key)!
      const result = this.#toResult(job.asset, job.contentHash, outcome)
      this.#files.push(result.report)
      results.push(result)
    }
    this.#progress.clear()
    return results
  }

  /**
   * A result the adapter could not write out: the file keeps its original bytes (writes are atomic), and
   * the report and the summary say so.
   */
  writeFailed(fileName: string, what: 'image' | 'webp', error: unknown): void {
    const entry = this.#files.find((f) => f.file === normalizeFileName(fileName))
    if (!entry) return
    if (what === 'webp') {
      entry.webpSize = null
      entry.note = `the WebP sibling could not be written: ${message(error)}`
    } else {
      Object.assign(entry, { optimizedSize: entry.originalSize, webpSize: null, error: `the optimized file could not be written: ${message(error)}` })
    }
  }

  /** Drops a file processed ahead of time that does not ship as processed (a public copy that changed or went). */
  forget(fileName: string): void {
    const name = normalizeFileName(fileName)
    const index = this.#files.findIndex((f) => f.file === name)
    if (index >= 0) this.#files.splice(index, 1)
  }

  /**
   * Renames files already processed, for bundlers that rename assets after optimizing them (webpack's
   * `realContentHash` puts the hash of the new bytes in the name): the report names what ships.
   */
  renameFiles(renamed: ReadonlyMap<string, string>): void {
    for (const file of this.#files) {
      const to = renamed.get(file.file)
      if (to !== undefined) file.file = normalizeFileName(to)
    }
  }

  /**
   * What `followingName` needs to take the digests of a result's old and new bytes from an earlier build
   * (a warm build renames its images without hashing them), and to note the ones it makes.
   */
  async knownDigests(result: AssetResult): Promise<KnownDigests | undefined> {
    const { before, after } = result.sha256
    if (after === null) return undefined
    const dir = this.#cache?.dir ?? ''
    let memo = digestMemos.get(dir)
    if (!memo) {
      memo = (async () => new DigestMemo((await this.#cache?.readNote(DIGEST_NOTE)) ?? {}))()
      digestMemos.set(dir, memo)
    }
    this.#digests = memo
    return { memo: await memo, before, after }
  }

  /** Counts references an adapter rewrote (HTML, CSS, JS, manifests) and assets it renamed, for the summary. */
  noteReferences(rewritten: number, renamed: number): void {
    this.#references.rewritten += rewritten
    this.#references.renamed += renamed
  }

  /** Ends the build: summary, JSON report, embedded server shutdown, cache pruning, `failOnError`. */
  async finish(): Promise<BuildReport> {
    if (this.#finished) throw new Error('BuildSession.finish() called twice')
    this.#finished = true
    this.#progress.clear()
    let requests = 0
    let tokensLeft: number | null = null
    const api: ApiUse = { sent: this.#sent, uploads: 0, polls: 0, tokensLeft: null }
    for (const [which, pending] of [['primary', this.#optimizer], ['fallback', this.#fallbackOptimizer]] as const) {
      const optimizer = await pending?.catch(() => null)
      if (!optimizer) continue
      requests += optimizer.requests()
      const byEndpoint = optimizer.stats().byEndpoint
      api.uploads += byEndpoint?.optimize ?? 0
      api.polls += byEndpoint?.result ?? 0
      if (which === 'primary') tokensLeft = optimizer.tokensLeft()
      await optimizer.close().catch((error: unknown) => this.#logger.warn(`could not stop the optimizer cleanly: ${message(error)}`))
    }
    tokensLeft = await this.#balance(tokensLeft)
    api.tokensLeft = tokensLeft
    const report = summarize(backendLabel(this.options.backend), this.#files, { requests, tokensUsed: this.#tokensUsed, tokensLeft })
    if (this.#references.rewritten > 0 || this.#references.renamed > 0) report.references = { ...this.#references }
    const references = formatReferences(report.references)
    if (report.totals.files > 0) this.#logger.info(formatTable(report, api) + (references ? `\n${references}` : ''))
    if (this.#unanswered > 0) this.#logger.warn(this.#unansweredLine())
    const failures = formatFailures(report)
    if (failures && !this.options.failOnError) this.#logger.warn(failures)
    // A build that met no image (an SSR environment, a CSS-only output) must not blank the report another
    // build of the same project just wrote.
    if (this.options.report && (report.totals.files > 0 || !existsSync(this.options.report))) {
      try {
        await writeJsonReport(this.options.report, report)
      } catch (error) {
        this.#logger.warn(`could not write the report to ${this.options.report}: ${message(error)}`)
      }
    }
    const unsaved = (await this.#digests)?.unsaved()
    if (this.#cache && unsaved) await this.#cache.writeNote(DIGEST_NOTE, unsaved).catch(() => {})
    if (this.#cache && this.options.cacheMaxAge !== false) {
      await this.#cache.pruneAtMostEvery(PRUNE_INTERVAL_MS, this.options.cacheMaxAge).catch(() => 0)
    }
    if (failures && this.options.failOnError) {
      throw new BuildError(`[megaoptim] ${failures}\n(failOnError is on; set failOnError: false to ship the originals instead)`)
    }
    return report
  }

  /**
   * The balance the API last reported for this backend: remembered in the cache when it answers, read
   * back when a build asks it nothing (all from cache), so cold and warm builds say the same.
   */
  async #balance(reported: number | null): Promise<number | null> {
    if (!this.#cache) return reported
    const backend = backendIdentity(this.options.backend)
    const note = (await this.#cache.readNote(BALANCE_NOTE)) ?? {}
    if (reported === null) {
      const known = (note[backend] as { tokensLeft?: unknown } | undefined)?.tokensLeft
      return typeof known === 'number' ? known : null
    }
    await this.#cache.writeNote(BALANCE_NOTE, { ...note, [backend]: { tokensLeft: reported, at: new Date().toISOString() } }).catch(() => {})
    return reported
  }

  /** The summary's word on an API that never answered: which one, for how long, what it cost, what to do. */
  #unansweredLine(): string {
    const backend = this.options.backend
    const which = backend.kind === 'embedded' ? 'the embedded engine' : `the ${backendLabel(backend)} API at ${backend.endpoint}`
    const images = `${this.#unanswered} image${this.#unanswered === 1 ? '' : 's'}`
    const retried = this.#retries > 0 ? ` (retried ${this.#retries} time${this.#retries === 1 ? '' : 's'})` : ''
    return (
      `${which} was unresponsive: no answer within ${seconds(this.options.timeout)}${retried}, so ${images} kept ` +
      `their original bytes. Check that the API is up, or raise timeout (now ${this.options.timeout} ms).`
    )
  }

  #fingerprint(kind: ImageKind, fileName: string): Record<string, unknown> {
    if (kind === 'svg') return { svg: SVG_PRESET_ID }
    // Keyed on exactly what is sent, so no output-changing parameter can be left out of the key.
    return { ...this.#params(fileName) }
  }

  /** For the embedded engine: the engine version this cache last saw, part of every key. */
  #loadIdentity(): Promise<void> {
    this.#identityLoaded ??= (async () => {
      const primary = this.options.backend.kind === 'embedded'
      if ((!primary && this.options.fallback !== 'embedded') || !this.#cache) return
      const note = await this.#cache.readNote(ENGINE_NOTE)
      if (typeof note?.engine !== 'string') return
      const identity = backendIdentity({ kind: 'embedded' }, note.engine)
      if (primary) this.#identity = identity
      else this.#fallbackIdentity = identity
    })()
    return this.#identityLoaded
  }

  /**
   * After the embedded server answered: if its engine is not the one the cache last saw, this build's
   * results are stored under the new identity, and the next build looks them up there.
   */
  async #refreshIdentity(optimizer: RemoteOptimizer, fallback = false): Promise<void> {
    if ((!fallback && this.options.backend.kind !== 'embedded') || !this.#cache) return
    const engine = await optimizer.engineVersion()
    if (!engine) return
    const identity = backendIdentity({ kind: 'embedded' }, engine)
    if (identity === (fallback ? this.#fallbackIdentity : this.#identity)) return
    if (fallback) this.#fallbackIdentity = identity
    else this.#identity = identity
    await this.#cache.writeNote(ENGINE_NOTE, { engine, package: backendIdentity({ kind: 'embedded' }) }).catch(() => {})
  }

  async #resolveMisses(misses: Miss[], tick: (label: string) => void): Promise<void> {
    const remote: Miss[] = []
    // Bounded: a big site has thousands of images, and each lookup reads a whole entry.
    await eachAtMost(
      LOCAL_CONCURRENCY,
      misses,
      async (miss) => {
        // Bytes this package produced (an in-place run met again) are never sent twice, whatever the settings.
        const hit = this.#cache
          ? ((await this.#cache.get(miss.key).catch(() => null)) ?? (await this.#cache.get(ownOutputKey(miss.contentHash)).catch(() => null)))
          : null
        if (hit) {
          tick(`${baseName(miss.asset.fileName)} from cache`)
          miss.settle({ result: hit, cached: true, fresh: false })
        } else if (miss.kind === 'svg') {
          miss.settle(await this.#svg(miss.key, miss.asset))
          tick(`${baseName(miss.asset.fileName)} svgo`)
        } else {
          remote.push(miss)
        }
      },
    )
    if (remote.length === 0) return

    // One request stream per set of parameters (data textures go lossless), sharing the client's queue;
    // largest first: a big image started last would finish alone while the other workers sit idle.
    // Largest in pixels, which is what the engine's time follows: a 9-megapixel flat PNG of 100 KB is
    // among the slowest images of a build, and by bytes it would come last.
    const groups = new Map<string, { params: OptimizeParams; misses: Miss[] }>()
    for (const miss of remote) {
      const params = this.#params(miss.asset.fileName)
      const id = JSON.stringify(params)
      const group = groups.get(id) ?? { params, misses: [] }
      group.misses.push(miss)
      groups.set(id, group)
    }
    const cost = new Map(remote.map((m) => [m, headerPixels(m.asset.data) ?? 0]))
    for (const group of groups.values()) {
      group.misses.sort((a, b) => cost.get(b)! - cost.get(a)! || b.asset.data.byteLength - a.asset.data.byteLength)
    }
    const all = [...groups.values()]
    if (this.#wait.spent()) {
      // An earlier phase of this build already waited the whole budget: nothing more is sent.
      const reason = `not sent: the API gave no answer within ${seconds(this.#wait.timeoutMs)} earlier in this build`
      await Promise.all(all.map((group) => this.#settleGroup(group.misses, group.params, [], reason)))
      return
    }
    let remoteDone = 0
    this.#sent += remote.length
    this.#remoteTick = (label) => {
      remoteDone++
      tick(label)
    }
    try {
      const work = (async () => {
        let optimizer: RemoteOptimizer
        try {
          optimizer = await this.#openOptimizer()
        } catch (error) {
          await Promise.all(all.map((group) => this.#settleGroup(group.misses, group.params, [], message(error))))
          return
        }
        // The clock starts once the client is ready: loading it (or starting the embedded server) is not waiting.
        const deadline = this.#wait.deadline()
        await Promise.all(all.map((group) => this.#optimizeGroup(optimizer, group.misses, group.params, deadline)))
      })()
      await this.#wait.watch(work, () => ({ done: remoteDone, total: remote.length, retries: this.#retries }), (line) => this.#heartbeat(line))
    } finally {
      this.#remoteTick = null
    }
  }

  async #optimizeGroup(optimizer: RemoteOptimizer, misses: Miss[], params: OptimizeParams, deadline: ReturnType<ApiWait['deadline']>): Promise<void> {
    let outcomes: OptimizeOutcome[] = []
    let thrown: string | null = null
    try {
      outcomes = await optimizer.optimize(
        misses.map((m) => ({ name: baseName(m.asset.fileName), data: m.asset.data })),
        params,
        { deadline },
      )
      await this.#refreshIdentity(optimizer)
    } catch (error) {
      thrown = message(error)
    }
    await this.#settleGroup(misses, params, outcomes, thrown)
  }

  /** Stores each outcome (`thrown`: the whole call failed), and hands what the API could not do to the fallback. */
  async #settleGroup(misses: Miss[], params: OptimizeParams, outcomes: OptimizeOutcome[], thrown: string | null): Promise<void> {
    const canFallBack = this.options.fallback === 'embedded' && this.options.backend.kind === 'remote'
    const rescued = canFallBack ? misses.filter((_, index) => thrown !== null || apiUnavailable(outcomes[index])) : []
    // Originals kept because the API never answered (the summary names the API as unresponsive).
    this.#unanswered +=
      thrown !== null && this.#wait.spent()
        ? misses.length - rescued.length
        : outcomes.filter((o, index) => o.status === 'failed' && NO_ANSWER.has(o.error.code) && !rescued.includes(misses[index]!)).length
    await Promise.all(
      misses.map(async (miss, index) => {
        if (rescued.includes(miss)) return
        if (thrown !== null) return miss.settle({ result: { outcome: 'failed', reason: thrown }, cached: false, fresh: false })
        const key = cacheKey(miss.contentHash, this.#fingerprint(miss.kind, miss.asset.fileName), this.#identity)
        miss.settle(await this.#store(key, miss.asset, outcomes[index]))
      }),
    )
    if (rescued.length) {
      const first = outcomes[misses.indexOf(rescued[0]!)]
      const reason = thrown ?? (first?.status === 'failed' ? withoutName(first.error.message, first.name) : 'the API failed')
      await this.#fallBack(rescued, params, reason)
    }
  }

  /**
   * `fallback: 'embedded'`: the images the API could not do go to the embedded engine. Their results are
   * cached under the engine's identity, never the API's, so a later build asks the API again.
   */
  async #fallBack(misses: Miss[], params: OptimizeParams, reason: string): Promise<void> {
    this.#logger.warn(`the API could not be used (${reason}); ${misses.length} ${misses.length === 1 ? 'image goes' : 'images go'} to the embedded engine instead (fallback: 'embedded')`)
    await this.#loadIdentity()
    const todo: Miss[] = []
    for (const miss of misses) {
      const key = cacheKey(miss.contentHash, this.#fingerprint(miss.kind, miss.asset.fileName), this.#fallbackIdentity)
      const hit = this.#cache ? await this.#cache.get(key).catch(() => null) : null
      if (hit) miss.settle({ result: hit, cached: true, fresh: false })
      else todo.push(miss)
    }
    if (todo.length === 0) return
    try {
      this.#fallbackOptimizer ??= this.#open({ kind: 'embedded' }, null)
      const optimizer = await this.#fallbackOptimizer
      const outcomes = await optimizer.optimize(todo.map((m) => ({ name: baseName(m.asset.fileName), data: m.asset.data })), params)
      await this.#refreshIdentity(optimizer, true)
      await Promise.all(
        todo.map(async (miss, index) => {
          const key = cacheKey(miss.contentHash, this.#fingerprint(miss.kind, miss.asset.fileName), this.#fallbackIdentity)
          miss.settle(await this.#store(key, miss.asset, outcomes[index], false))
        }),
      )
    } catch (error) {
      const failed = `${reason}; the embedded fallback failed too: ${message(error)}`
      for (const miss of todo) miss.settle({ result: { outcome: 'failed', reason: failed }, cached: false, fresh: false })
    }
  }

  async #svg(key: string, asset: AssetInput): Promise<Shared> {
    let result: CachedOutcome
    try {
      const data = await optimizeSvg(asset.data)
      result = data ? { outcome: 'optimized', data, webp: null, sha256: await this.#rememberOwnOutput(data, null) } : { outcome: 'no-gain', webp: null }
    } catch (error) {
      // svgo's parse errors quote the markup around the problem: keep the report readable.
      result = { outcome: 'unprocessable', reason: `svgo could not parse it: ${message(error).split('\n')[0]!.slice(0, 200)}` }
    }
    await this.#remember(key, result)
    return { result, cached: false, fresh: true }
  }

  /** Turns a client outcome into a shared one, caching what is final (never transient failures). */
  async #store(key: string, asset: AssetInput, outcome: OptimizeOutcome | undefined, paid = true): Promise<Shared> {
    if (!outcome) return { result: { outcome: 'failed', reason: 'the client returned no outcome for it' }, cached: false, fresh: false }
    let result: CachedOutcome
    if (outcome.status === 'optimized') {
      if (paid) this.#tokensUsed++
      // A result cut short in transit or by a faulty server is not remembered: the next build asks again.
      const broken = truncationReason(kindFromName(normalizeFileName(asset.fileName))!, outcome.data)
      if (broken) return { result: { outcome: 'failed', reason: `the optimized result was unusable (${broken})` }, cached: false, fresh: false }
      const smaller = outcome.data.byteLength > 0 && outcome.data.byteLength < asset.data.byteLength
      result = smaller
        ? { outcome: 'optimized', data: outcome.data, webp: outcome.webp, sha256: await this.#rememberOwnOutput(outcome.data, outcome.webp) }
        : { outcome: 'no-gain', webp: outcome.webp }
    } else if (outcome.status === 'no-gain') {
      // A compatible server may say why (`reason`); the hosted API never does.
      const reason = (outcome as { reason?: unknown }).reason
      result = typeof reason === 'string' && reason ? { outcome: 'no-gain', webp: null, reason } : { outcome: 'no-gain', webp: null }
    } else if (PERMANENT_ITEM_ERRORS.has(outcome.error.code)) {
      result = { outcome: 'unprocessable', reason: withoutName(outcome.error.message, outcome.name) }
    } else {
      return { result: { outcome: 'failed', reason: withoutName(outcome.error.message, outcome.name) }, cached: false, fresh: false }
    }
    await this.#remember(key, result)
    return { result, cached: false, fresh: true }
  }

  async #remember(key: string, result: CachedOutcome): Promise<void> {
    if (!this.#cache) return
    try {
      await this.#cache.set(key, result)
    } catch (error) {
      this.#logger.warn(`could not write to the cache in ${this.#cache.dir}: ${message(error)} (the build goes on)`)
    }
  }

  /**
   * Marks bytes this package produced, under a key of their content alone: met again (an in-place CLI
   * run, an optimized image copied back into the sources), they are kept as they are, never re-encoded.
   */
  async #rememberOwnOutput(data: Uint8Array, webp: Uint8Array | null): Promise<string> {
    const dataSha256 = sha256(data)
    await this.#remember(ownOutputKey(dataSha256), webp ? { outcome: 'no-gain', webp, reason: OWN_OUTPUT_NOTE } : { outcome: 'no-gain', webp: null, reason: OWN_OUTPUT_NOTE })
    if (webp) await this.#remember(ownOutputKey(sha256(webp)), { outcome: 'no-gain', webp: null, reason: OWN_OUTPUT_NOTE })
    return dataSha256
  }

  /** What is sent for this file: data textures go lossless unless the user said otherwise. */
  #params(fileName: string): OptimizeParams {
    const o = this.options
    return {
      compression: o.compression !== 'lossless' && this.#isTexture(fileName) ? 'lossless' : o.compression,
      webp: o.webp,
      keepExif: o.keepExif,
      cmykToRgb: o.cmykToRgb,
      maxWidth: o.maxWidth,
      maxHeight: o.maxHeight,
    }
  }

  #openOptimizer(): Promise<RemoteOptimizer> {
    this.#optimizer ??= this.#open(this.options.backend, this.options.embeddedReason)
    return this.#optimizer
  }

  /** `why` the embedded engine is the backend, or null when it is the fallback (which says so itself). */
  #open(backend: Backend, why: string | null): Promise<RemoteOptimizer> {
    return openOptimizer({
      backend,
      concurrency: this.options.concurrency,
      rateLimit: this.options.rateLimit,
      retries: this.options.retries,
      onEvent: (event: ClientEvent) => {
        if (event.type === 'retried') this.#retries++
        if (event.type === 'done') this.#remoteTick?.(`${event.name} ${event.outcome === 'optimized' ? 'optimized' : event.outcome === 'no-gain' ? 'kept' : 'failed'}`)
      },
      onEmbeddedStart: (endpoint) => {
        if (why) this.#logger.info(`${why}: optimizing with the embedded engine at ${endpoint} (set MEGAOPTIM_API_KEY to use the MegaOptim API)`)
      },
    })
  }

  /** A progress line while the API works: the live line on a TTY, a plain line elsewhere (CI logs). */
  #heartbeat(line: string): void {
    if (!this.#showProgress) return
    if (this.#progress.live) this.#progress.show(line)
    else this.#logger.info(line)
  }

  #toResult(asset: AssetInput, contentHash: string, shared: Shared): AssetResult {
    const originalSize = asset.data.byteLength
    const file = normalizeFileName(asset.fileName)
    // A WebP image gets no `.webp.webp` sibling.
    const siblings = this.options.webp && kindFromName(file) !== 'webp'
    const keep = (error: string | null, webp: Uint8Array | null = null, note: string | null = null): AssetResult => {
      const sibling = siblings && webp && webp.byteLength < originalSize ? webp : null
      return {
        fileName: asset.fileName,
        data: asset.data,
        changed: false,
        webp: sibling,
        report: { file, originalSize, optimizedSize: originalSize, cached: shared.cached, webpSize: sibling?.byteLength ?? null, error, note },
        sha256: { before: contentHash, after: contentHash },
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
    if (!this.#enoughSavings(originalSize, r.data.byteLength)) return keep(null, webp, 'saved less than minSavings')
    const sibling = siblings && webp && webp.byteLength < r.data.byteLength ? webp : null
    return {
      fileName: asset.fileName,
      data: r.data,
      changed: true,
      webp: sibling,
      report: { file, originalSize, optimizedSize: r.data.byteLength, cached: shared.cached, webpSize: sibling?.byteLength ?? null, error: null, note: null },
      sha256: { before: contentHash, after: r.sha256 ?? null },
    }
  }

  #enoughSavings(original: number, optimized: number): boolean {
    const min = this.options.minSavings
    const saved = original - optimized
    return min.unit === 'bytes' ? saved >= min.value : (saved / original) * 100 >= min.value
  }
}

/**
 * Runs `work` on every item, at most `limit` at a time; rejects with the first failure. The client's
 * p-queue is not needed for this, and a build whose images all come from the cache does not load it.
 */
async function eachAtMost<T>(limit: number, items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let turn = performance.now()
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      await work(items[next++]!)
      // Cache entries are read synchronously: on a site with thousands of images, let the event loop (an
      // embedded server busy with the other images, the progress timers) run between them now and then.
      if (performance.now() - turn > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve))
        turn = performance.now()
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
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
