/**
 * The plugin's options: one documented `Options` type and one pure `resolveOptions()` that validates
 * everything up front, so a typo fails the build at start instead of half-way through.
 */
import path from 'node:path'
import { MegaOptimError, showValue as show } from '../contract/errors.ts'
import { KIND_BY_EXTENSION } from '../contract/formats.ts'
import { type Compression, resolveImageParams } from '../contract/params.ts'
import { selectBackend, type Backend, type Fallback } from './backend.ts'

export type { Compression } from '../contract/params.ts'
export { DEFAULT_ENDPOINT, Secret, type Backend, type Fallback } from './backend.ts'
export type LogLevel = 'silent' | 'error' | 'warn' | 'info'
/** `'lossless'`: data textures found by their names; `'as-images'`: none; a list: the files those globs match. */
export type TexturesOption = 'lossless' | 'as-images' | string[]

export const DEFAULT_CACHE_DIR = 'node_modules/.cache/unplugin-megaoptim'
export const DEFAULT_INCLUDE = [`**/*.{${Object.keys(KIND_BY_EXTENSION).join(',')}}`]
const DAY_MS = 24 * 60 * 60 * 1000

export interface Options {
  /**
   * Set to `false` to switch the plugin off (e.g. `enabled: process.env.CI === 'true'`): no image is
   * touched, nothing is started or cached.
   * @default true
   */
  enabled?: boolean
  /**
   * Your MegaOptim API key. Never logged, never written to the cache or the report.
   * With no key (and no `MEGAOPTIM_API_KEY`), images are optimized in-process by the embedded,
   * sharp-powered compatible server on 127.0.0.1. An empty key counts as none (a fork's CI has empty
   * secrets); a key that cannot be one (wrong length, spaces, quotes) stops the build at start.
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
   * `'embedded'`: when the API cannot be reached, is down, or the account is out of tokens, the images
   * it could not do are optimized by the embedded engine instead (cached under the engine's identity,
   * so a later build asks the API again). `false`: they keep their original bytes.
   * @default false
   */
  fallback?: Fallback
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
   * Data textures (normal, roughness, metallic, height/displacement/bump, occlusion/AO and ORM maps) hold
   * numbers a shader reads, not pictures: lossy compression breaks the lighting of a 3D scene. With
   * `'lossless'` the files named as glTF, three.js, Poly Haven or ambientCG exports name them
   * (`Moss_normal.png`, `LeavesNormalGL.jpg`, `wood_nor_gl_1k.png`, `*_rough*`, `*_metal*`, `*_ao*`,
   * `*_orm*`, `*_arm*`, `*_height*`, `*_disp*`, `occlusionRoughnessMetallic`) are optimized with
   * `compression: 'lossless'` whatever `compression` says. A list of globs (matched like `include`) names
   * exactly which files are data textures instead; `'as-images'` treats them like any other image.
   * @default 'lossless'
   */
  textures?: 'lossless' | 'as-images' | string[]
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
  minSavings?: number | `${number}%`
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
   * How many optimize jobs may be in flight at once. The embedded server gets one image per job and, by
   * default, one job more than it has workers (CPU cores + 1): more would only wait in its memory. A
   * lower value caps the images it optimizes at once, and so its memory.
   * @default 8 (embedded: CPU cores + 2)
   */
  concurrency?: number
  /**
   * Requests per minute per API endpoint (`/optimize`, `/result`, `/users/info`).
   * @default 120
   */
  rateLimit?: number
  /**
   * The most one build waits on the API, in milliseconds, over all its phases (bundled assets and Vite's
   * `public/` copies share it). Past it nothing more is sent, requests still open are cut, every image not
   * done keeps its original bytes, and the summary says the API did not answer. The time the rate limit
   * alone needs to send the images is added on top, so a large build is not cut by its own pacing.
   * @default 120_000
   */
  timeout?: number
  /**
   * How many times a failed API request (network error, no answer, 5xx, 429) is tried again, with
   * exponential backoff, within `timeout`. `0` tries each request once.
   * @default 4
   */
  retries?: number
  /**
   * How chatty the plugin is: `info` prints the summary table, `warn` only problems, `silent` nothing.
   * @default 'info'
   */
  logLevel?: LogLevel
}

export type MinSavings = { unit: 'bytes'; value: number } | { unit: 'percent'; value: number }

export interface ResolvedOptions {
  enabled: boolean
  backend: Backend
  /** Why the embedded engine is used, for the one line printed when it starts. */
  embeddedReason: string
  fallback: Fallback
  include: string[]
  exclude: string[]
  compression: Compression
  textures: TexturesOption
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
  /** In milliseconds. */
  timeout: number
  retries: number
  logLevel: LogLevel
}

/** Everything `resolveOptions()` reads from outside its argument, passed in so it stays pure. */
export interface ResolveContext {
  /** Environment variables (`MEGAOPTIM_API_KEY`). */
  env?: Record<string, string | undefined>
  /** Base for relative `cache` and `report` paths. */
  cwd?: string
}

export class OptionsError extends MegaOptimError {
  override name = 'OptionsError'
  constructor(message: string) {
    super('MEGAOPTIM_INVALID_OPTION', message)
  }
}

const KNOWN = new Set<keyof Options>([
  'apiKey', 'endpoint', 'enabled', 'fallback', 'include', 'exclude', 'compression', 'textures', 'webp', 'keepExif',
  'cmykToRgb', 'maxWidth',
  'maxHeight', 'minSize', 'minSavings', 'cache', 'cacheMaxAge', 'report', 'failOnError', 'concurrency',
  'rateLimit', 'timeout', 'retries', 'logLevel',
])

export const DEFAULT_TIMEOUT_MS = 120_000
export const DEFAULT_RETRIES = 4

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

function textures(value: unknown): TexturesOption {
  if (value === undefined) return 'lossless'
  if (value === 'lossless' || value === 'as-images') return value
  if (Array.isArray(value) && value.length > 0 && value.every((g) => typeof g === 'string' && g.trim() !== '')) {
    return [...(value as string[])]
  }
  return fail('textures', '"lossless", "as-images" or a non-empty array of glob strings', value)
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

  const fallback = options.fallback ?? false
  if (fallback !== false && fallback !== 'embedded') fail('fallback', '"embedded" or false', options.fallback)
  const choice = selectBackend({
    apiKey: options.apiKey,
    ...(options.endpoint === undefined ? {} : { endpoint: endpointUrl(options.endpoint) }),
    env,
  })

  return {
    enabled: bool('enabled', options.enabled, true),
    backend: choice.backend,
    embeddedReason: choice.embeddedReason,
    fallback,
    include: globs('include', options.include, DEFAULT_INCLUDE),
    exclude: globs('exclude', options.exclude, []),
    ...image,
    textures: textures(options.textures),
    minSize: wholeNumber('minSize', options.minSize, 0),
    minSavings: minSavings(options.minSavings),
    cache,
    cacheMaxAge,
    report,
    failOnError: bool('failOnError', options.failOnError, false),
    concurrency: options.concurrency === undefined ? undefined : wholeNumber('concurrency', options.concurrency, 8, 1),
    rateLimit: options.rateLimit === undefined ? undefined : wholeNumber('rateLimit', options.rateLimit, 120, 1),
    timeout: wholeNumber('timeout', options.timeout, DEFAULT_TIMEOUT_MS, 1),
    retries: wholeNumber('retries', options.retries, DEFAULT_RETRIES, 0),
    logLevel,
  }
}
