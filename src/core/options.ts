/**
 * The plugin's options: one documented `Options` type and one pure `resolveOptions()` that validates
 * everything up front, so a typo fails the build at start instead of half-way through.
 */
import path from 'node:path'
import { MegaOptimError, showValue as show } from '../contract/errors.ts'
import { KIND_BY_EXTENSION } from '../contract/formats.ts'
import { type Compression, resolveImageParams } from '../contract/params.ts'

export type { Compression } from '../contract/params.ts'
export type LogLevel = 'silent' | 'error' | 'warn' | 'info'

export const DEFAULT_ENDPOINT = 'https://api.megaoptim.com/v1'
export const DEFAULT_CACHE_DIR = 'node_modules/.cache/unplugin-megaoptim'
export const DEFAULT_INCLUDE = [`**/*.{${Object.keys(KIND_BY_EXTENSION).join(',')}}`]
const DAY_MS = 24 * 60 * 60 * 1000

export interface Options {
  /**
   * Your MegaOptim API key. Never logged, never written to the cache or the report.
   * With no key (and no `MEGAOPTIM_API_KEY`), images are optimized in-process by the embedded,
   * sharp-powered compatible server on 127.0.0.1.
   * @default process.env.MEGAOPTIM_API_KEY
   */
  apiKey?: string
  /**
   * The API to talk to when a key is given: the hosted MegaOptim API or any compatible server
   * (`megaoptim serve`). Needs a key; without one the embedded server is used.
   * @default 'https://api.megaoptim.com/v1'
   */
  endpoint?: string
  /**
   * Which emitted files to optimize: picomatch globs matched against the output path relative to the
   * output directory (e.g. `assets/hero-3fa1.png`), case-insensitive.
   * @default ['**\/*.{jpg,jpeg,jpe,png,gif,webp,svg}']
   */
  include?: string | string[]
  /**
   * Globs of emitted files to leave alone; wins over `include`.
   * @default []
   */
  exclude?: string | string[]
  /**
   * `lossless` keeps the pixels identical; `intelligent` is visually almost identical and much smaller;
   * `ultra` goes further with some, hardly noticeable, loss.
   * @default 'intelligent'
   */
  compression?: Compression
  /**
   * Also emit a `.webp` sibling next to each image (`hero-3fa1.png.webp`), only when it is smaller than
   * the optimized original. References are not rewritten.
   * @default false
   */
  webp?: boolean
  /**
   * Keep EXIF/IPTC metadata (camera, GPS, time). Off strips it after auto-orienting.
   * @default false
   */
  keepExif?: boolean
  /**
   * Convert CMYK images to sRGB for the web.
   * @default true
   */
  cmykToRgb?: boolean
  /**
   * Fit images inside this width in pixels (never enlarged, aspect ratio kept). 0 = off.
   * @default 0
   */
  maxWidth?: number
  /**
   * Fit images inside this height in pixels (never enlarged, aspect ratio kept). 0 = off.
   * @default 0
   */
  maxHeight?: number
  /**
   * Skip files smaller than this many bytes: tiny files rarely gain anything worth a token.
   * @default 0
   */
  minSize?: number
  /**
   * Keep the original unless the optimized file is at least this much smaller: a whole number of bytes
   * (`2048`) or a percentage of the original as a string (`'5%'`).
   * @default 0
   */
  minSavings?: number | string
  /**
   * Where optimized results are cached, keyed by the image's content hash plus every option that changes
   * the output. Any directory works (commit it to share it across machines); `false` turns caching off.
   * Relative paths are resolved against the working directory.
   * @default 'node_modules/.cache/unplugin-megaoptim'
   */
  cache?: string | false
  /**
   * Cache entries not used for this many days are pruned at the end of a build. `false` never prunes.
   * @default 30
   */
  cacheMaxAge?: number | false
  /**
   * Write a JSON report of the build to this path (relative to the working directory). `false` = none.
   * @default false
   */
  report?: string | false
  /**
   * Fail the build when an image could not be optimized (invalid key, no tokens, API down, broken
   * image, ...). Off: warn and ship the original bytes.
   * @default false
   */
  failOnError?: boolean
  /**
   * How many optimize jobs may be in flight at once.
   * @default 8
   */
  concurrency?: number
  /**
   * Requests per minute per API endpoint (`/optimize`, `/result`, `/users/info`).
   * @default 120
   */
  rateLimit?: number
  /**
   * How chatty the plugin is: `info` prints the summary table, `warn` only problems, `silent` nothing.
   * @default 'info'
   */
  logLevel?: LogLevel
}

/** Where images are optimized. */
export type Backend =
  | { kind: 'remote'; endpoint: string; apiKey: Secret; hosted: boolean }
  | { kind: 'embedded' }

export type MinSavings = { unit: 'bytes'; value: number } | { unit: 'percent'; value: number }

export interface ResolvedOptions {
  backend: Backend
  include: string[]
  exclude: string[]
  compression: Compression
  webp: boolean
  keepExif: boolean
  cmykToRgb: boolean
  maxWidth: number
  maxHeight: number
  minSize: number
  minSavings: MinSavings
  /** Absolute directory, or false. */
  cache: string | false
  /** In milliseconds, or false. */
  cacheMaxAge: number | false
  /** Absolute path, or false. */
  report: string | false
  failOnError: boolean
  concurrency: number | undefined
  rateLimit: number | undefined
  logLevel: LogLevel
}

/** Everything `resolveOptions()` reads from outside its argument, passed in so it stays pure. */
export interface ResolveContext {
  /** Environment variables (`MEGAOPTIM_API_KEY`). */
  env?: Record<string, string | undefined>
  /** Base for relative `cache` and `report` paths. */
  cwd?: string
}

/** Holds the API key so that logging, `JSON.stringify` or `util.inspect` of resolved options never shows it. */
export class Secret {
  readonly #value: string
  constructor(value: string) {
    this.#value = value
  }
  reveal(): string {
    return this.#value
  }
  toString(): string {
    return '[redacted]'
  }
  toJSON(): string {
    return '[redacted]'
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[redacted]'
  }
}

export class OptionsError extends MegaOptimError {
  override name = 'OptionsError'
  constructor(message: string) {
    super('MEGAOPTIM_INVALID_OPTION', message)
  }
}

const KNOWN = new Set<keyof Options>([
  'apiKey', 'endpoint', 'include', 'exclude', 'compression', 'webp', 'keepExif', 'cmykToRgb', 'maxWidth',
  'maxHeight', 'minSize', 'minSavings', 'cache', 'cacheMaxAge', 'report', 'failOnError', 'concurrency',
  'rateLimit', 'logLevel',
])

function fail(name: string, allowed: string, value: unknown): never {
  throw new OptionsError(`[megaoptim] ${name} must be ${allowed}, got ${show(value)}`)
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(name, 'true or false', value)
  return value
}

function wholeNumber(name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(name, `a whole number >= ${min}`, value)
  }
  return value
}

function globs(name: string, value: unknown, fallback: string[]): string[] {
  if (value === undefined) return [...fallback]
  const list = Array.isArray(value) ? value : [value]
  for (const item of list) {
    if (typeof item !== 'string' || item.trim() === '') fail(name, 'a glob string or an array of glob strings', value)
  }
  return [...(list as string[])]
}

function minSavings(value: unknown): MinSavings {
  const allowed = 'a whole number of bytes >= 0 or a percentage string such as "5%" (0-99%)'
  if (value === undefined) return { unit: 'bytes', value: 0 }
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) fail('minSavings', allowed, value)
    return { unit: 'bytes', value }
  }
  if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value)
    const percent = match ? Number(match[1]) : Number.NaN
    if (!(percent >= 0 && percent < 100)) fail('minSavings', allowed, value)
    return { unit: 'percent', value: percent }
  }
  return fail('minSavings', allowed, value)
}

function endpointUrl(value: unknown): string {
  const allowed = 'an http(s) URL such as "https://api.megaoptim.com/v1"'
  if (typeof value !== 'string') fail('endpoint', allowed, value)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return fail('endpoint', allowed, value)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('endpoint', allowed, value)
  if (url.username || url.password) fail('endpoint', 'a URL without credentials (pass the key as apiKey)', '<url with credentials>')
  // Paths are appended to the endpoint, and a query might hold a secret that errors would repeat.
  if (url.search || url.hash) fail('endpoint', 'a URL without a query or fragment', `${url.origin}${url.pathname}?…`)
  return url.href.replace(/\/+$/, '')
}

function backend(options: Options, env: Record<string, string | undefined>): Backend {
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.trim() === '')) {
    // Never echo what could be a key.
    fail('apiKey', 'a non-empty string', typeof options.apiKey === 'string' ? '' : typeof options.apiKey)
  }
  const apiKey = options.apiKey?.trim() || env.MEGAOPTIM_API_KEY?.trim() || undefined
  const endpoint = options.endpoint === undefined ? undefined : endpointUrl(options.endpoint)
  if (!apiKey) {
    if (endpoint !== undefined) {
      throw new OptionsError(
        `[megaoptim] endpoint ${show(endpoint)} needs an API key: set apiKey or MEGAOPTIM_API_KEY, ` +
          'or remove endpoint to optimize with the embedded engine',
      )
    }
    return { kind: 'embedded' }
  }
  const resolved = endpoint ?? DEFAULT_ENDPOINT
  return { kind: 'remote', endpoint: resolved, apiKey: new Secret(apiKey), hosted: resolved === DEFAULT_ENDPOINT }
}

/** Validates `options` and fills in defaults. Pure: reads only its arguments and never mutates them. */
export function resolveOptions(options: Options = {}, context: ResolveContext = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    fail('options', 'an object', options)
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key as keyof Options)) {
      throw new OptionsError(`[megaoptim] unknown option ${show(key)}; known options: ${[...KNOWN].join(', ')}`)
    }
  }
  const env = context.env ?? {}
  const cwd = context.cwd ?? '.'

  const image = resolveImageParams(options, fail)
  const logLevel = options.logLevel ?? 'info'
  if (!['silent', 'error', 'warn', 'info'].includes(logLevel)) {
    fail('logLevel', '"silent", "error", "warn" or "info"', options.logLevel)
  }

  let cache: string | false
  if (options.cache === undefined) cache = path.resolve(cwd, DEFAULT_CACHE_DIR)
  else if (options.cache === false) cache = false
  else if (typeof options.cache === 'string' && options.cache.trim() !== '') cache = path.resolve(cwd, options.cache)
  else fail('cache', 'a directory path or false', options.cache)

  let cacheMaxAge: number | false
  if (options.cacheMaxAge === undefined) cacheMaxAge = 30 * DAY_MS
  else if (options.cacheMaxAge === false) cacheMaxAge = false
  else if (typeof options.cacheMaxAge === 'number' && Number.isFinite(options.cacheMaxAge) && options.cacheMaxAge > 0) {
    cacheMaxAge = options.cacheMaxAge * DAY_MS
  } else fail('cacheMaxAge', 'a number of days > 0 or false', options.cacheMaxAge)

  let report: string | false
  if (options.report === undefined || options.report === false) report = false
  else if (typeof options.report === 'string' && options.report.trim() !== '') report = path.resolve(cwd, options.report)
  else fail('report', 'a file path or false', options.report)

  return {
    backend: backend(options, env),
    include: globs('include', options.include, DEFAULT_INCLUDE),
    exclude: globs('exclude', options.exclude, []),
    ...image,
    minSize: wholeNumber('minSize', options.minSize, 0),
    minSavings: minSavings(options.minSavings),
    cache,
    cacheMaxAge,
    report,
    failOnError: bool('failOnError', options.failOnError, false),
    concurrency: options.concurrency === undefined ? undefined : wholeNumber('concurrency', options.concurrency, 8, 1),
    rateLimit: options.rateLimit === undefined ? undefined : wholeNumber('rateLimit', options.rateLimit, 120, 1),
    logLevel,
  }
}
