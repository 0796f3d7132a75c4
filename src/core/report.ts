/**
 * What the user sees: a progress line on a TTY, one summary table at the end, a grouped warning for
 * images that kept their original bytes, and the optional JSON report.
 */
import type { LogLevel } from './options.ts'
import { writeFileAtomic } from './atomic.ts'
import { toReportJson } from './report-json.ts'

export interface Logger {
  info(message: string): void
  warn(message: string): void
  /** The bundler puts the plugin's name before every info line itself (webpack's infrastructure logger). */
  labelsInfo?: boolean
}

export const PREFIX = '[megaoptim]'

/** A logger that writes to the console; adapters prefer the bundler's own logger. */
export const consoleLogger: Logger = {
  // The bundlers print their own summaries on stdout-like streams; stderr keeps ours out of piped output.
  info: (message) => console.error(message),
  warn: (message) => console.warn(message),
}

const LEVELS: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3 }

/** Prefixes every line and drops what `logLevel` hides. */
export function levelled(logger: Logger, level: LogLevel): Logger {
  const prefix = (message: string) => message.split('\n').map((line) => `${PREFIX} ${line}`).join('\n')
  return {
    info: (message) => {
      if (LEVELS[level] >= LEVELS.info) logger.info(logger.labelsInfo ? message : prefix(message))
    },
    warn: (message) => {
      if (LEVELS[level] >= LEVELS.warn) logger.warn(prefix(message))
    },
  }
}

export interface FileReport {
  file: string
  originalSize: number
  /** The size shipped: equal to `originalSize` when the original was kept. */
  optimizedSize: number
  /** Served from the cache (or from an identical image another build in this process just did). */
  cached: boolean
  /** Size of the emitted `.webp` sibling, or null when none was emitted. */
  webpSize: number | null
  /** Why the original was kept because something failed, or null. */
  error: string | null
  /** Why nothing was gained, when the optimizer said (e.g. "Saved 0.8% only"), or null. */
  note: string | null
}

export interface Totals {
  files: number
  originalBytes: number
  optimizedBytes: number
  savedBytes: number
  webpFiles: number
  cacheHits: number
  /** HTTP requests to the API made by this build (downloads not included). */
  requests: number
  tokensUsed: number
  /** The balance the API last reported; null when it was not asked (e.g. everything came from cache). */
  tokensLeft: number | null
  errors: number
}

export interface BuildReport {
  /** Where images were optimized: `hosted`, `self-hosted` or `embedded` (never the key or its URL). */
  backend: string
  totals: Totals
  files: FileReport[]
  /** What the build changed outside the images themselves (absent when nothing was). */
  references?: ReferenceCounts
}

/** References rewritten in the emitted HTML, CSS, JS and manifests; assets renamed to the hash of their new bytes. */
export interface ReferenceCounts {
  rewritten: number
  renamed: number
}

/** The summary's line about references, or null when the build changed none. */
export function formatReferences(counts: ReferenceCounts | undefined): string | null {
  if (!counts || (counts.rewritten === 0 && counts.renamed === 0)) return null
  return `${counts.rewritten} references rewritten, ${counts.renamed} file names changed with their bytes`
}

/**
 * The report's order: by name ignoring case, then by code unit, the same on every machine. Not
 * localeCompare: its first call starts ICU's collator, 10-20 ms of a build whose images all come from the
 * cache.
 */
export function byName(a: string, b: string): number {
  const [lowerA, lowerB] = [a.toLowerCase(), b.toLowerCase()]
  if (lowerA !== lowerB) return lowerA < lowerB ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

export function summarize(
  backend: string,
  files: FileReport[],
  counters: { requests: number; tokensUsed: number; tokensLeft: number | null },
): BuildReport {
  const sorted = [...files].sort((a, b) => byName(a.file, b.file))
  const totals: Totals = {
    files: sorted.length,
    originalBytes: 0,
    optimizedBytes: 0,
    savedBytes: 0,
    webpFiles: 0,
    cacheHits: 0,
    requests: counters.requests,
    tokensUsed: counters.tokensUsed,
    tokensLeft: counters.tokensLeft,
    errors: 0,
  }
  for (const f of sorted) {
    totals.originalBytes += f.originalSize
    totals.optimizedBytes += f.optimizedSize
    if (f.webpSize !== null) totals.webpFiles++
    if (f.cached) totals.cacheHits++
    if (f.error) totals.errors++
  }
  totals.savedBytes = totals.originalBytes - totals.optimizedBytes
  return { backend, totals, files: sorted }
}

export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) < 1024) return `${bytes} B`
  if (Math.abs(bytes) < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`
}

function percent(saved: number, original: number): string {
  return original > 0 ? `${((saved / original) * 100).toFixed(1)}%` : '0.0%'
}

/** What the API was asked in this build, to explain the requests and tokens in the summary. */
export interface ApiUse {
  /** Images sent to the API (cache misses that were not SVG). */
  sent: number
  /** `/optimize` requests: uploads of up to 5 images each. */
  uploads: number
  /** `/optimize/{id}/result` requests: asking whether a job is done (a long-poll each). */
  polls: number
  /** The balance as the API gave it (`-1` = unlimited), or remembered from its last answer; null if never known. */
  tokensLeft: number | null
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** The balance in words: `-1` is what the API says for an unlimited account. */
export function formatTokensLeft(tokensLeft: number | null): string {
  return tokensLeft === null ? 'unknown' : tokensLeft === -1 ? 'unlimited' : String(tokensLeft)
}

/**
 * The end-of-build table with totals, as lines ready for the logger. The last lines say where requests
 * and tokens went: images go up in batches of up to 5 per request, each job is then asked for its result,
 * and only an optimized image costs a token (cache hits and images without gain cost none).
 */
export function formatTable(report: BuildReport, api: ApiUse = { sent: 0, uploads: 0, polls: 0, tokensLeft: report.totals.tokensLeft }): string {
  const header = ['file', 'before', 'after', 'saved', 'webp', 'source']
  const rows = report.files.map((f) => [
    f.file,
    formatBytes(f.originalSize),
    formatBytes(f.optimizedSize),
    f.error ? 'kept' : percent(f.originalSize - f.optimizedSize, f.originalSize),
    f.webpSize === null ? '-' : formatBytes(f.webpSize),
    f.error ? 'failed' : f.cached ? 'cached' : 'fresh',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()
  const t = report.totals
  const others = t.requests - api.uploads - api.polls
  const asked =
    t.requests === 0
      ? `no API request (${report.backend})`
      : `${plural(api.sent, 'image')} sent to the API (${report.backend}) in ${plural(t.requests, 'request')}: ` +
        `${plural(api.uploads, 'upload')} of up to 5 images, ${plural(api.polls, 'result check')}` +
        (others > 0 ? `, ${plural(others, 'other')}` : '')
  return [
    line(header),
    ...rows.map(line),
    `${plural(t.files, 'image')}: ${formatBytes(t.originalBytes)} -> ${formatBytes(t.optimizedBytes)}, saved ` +
      `${formatBytes(t.savedBytes)} (${percent(t.savedBytes, t.originalBytes)})` +
      (t.webpFiles ? `, ${plural(t.webpFiles, 'WebP sibling')}` : '') +
      (t.errors ? `; ${t.errors} kept ${t.errors === 1 ? 'its' : 'their'} original bytes` : ''),
    `${plural(t.cacheHits, 'cache hit')}, ${asked}`,
    `${plural(t.tokensUsed, 'token')} used (one per optimized image; cache hits and images without gain cost none), ` +
      `tokens left: ${formatTokensLeft(api.tokensLeft)}`,
  ].join('\n')
}

/** One warning for everything that kept its original bytes, grouped by reason. */
export function formatFailures(report: BuildReport): string | null {
  const failed = report.files.filter((f) => f.error)
  if (failed.length === 0) return null
  const byReason = new Map<string, string[]>()
  for (const f of failed) {
    const reason = f.error!.startsWith(`${f.file}: `) ? f.error!.slice(f.file.length + 2) : f.error!
    byReason.set(reason, [...(byReason.get(reason) ?? []), f.file])
  }
  const lines = [`${failed.length} of ${report.totals.files} images kept their original bytes:`]
  for (const [reason, names] of byReason) lines.push(`  ${names.join(', ')}: ${reason}`)
  return lines.join('\n')
}

/** The JSON report, in the one schema of `report-json.ts`. */
export async function writeJsonReport(file: string, report: BuildReport): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(toReportJson(report), null, 2)}\n`)
}

/** A single, rewritten progress line on an interactive terminal; silent elsewhere (CI logs stay clean). */
export class Progress {
  readonly #stream: NodeJS.WriteStream
  readonly #enabled: boolean
  #shown = false

  constructor(enabled: boolean, stream: NodeJS.WriteStream = process.stderr, env: Record<string, string | undefined> = process.env) {
    this.#stream = stream
    this.#enabled = enabled && stream.isTTY === true && !env.CI
  }

  /** Whether the line is drawn (a TTY outside CI); elsewhere progress goes out as plain log lines. */
  get live(): boolean {
    return this.#enabled
  }

  update(done: number, total: number, label: string): void {
    if (total === 0) return
    this.show(`${done}/${total} ${label}`)
  }

  /** Draws `text` as the progress line. */
  show(line: string): void {
    if (!this.#enabled) return
    const text = `${PREFIX} ${line}`
    // A pseudo-terminal may report 0 columns.
    const width = this.#stream.columns || 80
    this.#stream.write(`\r\x1b[2K${text.slice(0, width - 1)}`)
    this.#shown = true
  }

  clear(): void {
    if (!this.#shown) return
    this.#stream.write('\r\x1b[2K')
    this.#shown = false
  }
}
