/**
 * `resolveClientOptions()`: validates {@link ClientOptions} with exact messages, fills defaults, and never
 * mutates its input. Messages never echo the API key.
 */
import type { ClientEvent, ClientOptions, RateLimitSpec } from './types.ts'
import type { EndpointKind } from './http.ts'

export const DEFAULT_ENDPOINT = 'https://api.megaoptim.com/v1'
/** The hosted API's limit on each endpoint. */
export const DEFAULT_RATE_LIMIT: RateLimitSpec = { requests: 120, perMs: 60_000 }

export interface ResolvedClientOptions {
  apiKey: string
  endpoint: string
  rateLimits: Record<EndpointKind, RateLimitSpec>
  maxInFlightJobs: number
  requestTimeout: number
  maxAttempts: number
  deadline: number
  /** Whether `deadline` was given (else it grows with the size of a call). */
  deadlineGiven: boolean
  pollTimeoutSeconds: number
  downloadConcurrency: number
  retryBaseDelay: number
  retryMaxDelay: number
  maxBatchSize: number
  onEvent: (event: ClientEvent) => void
}

export function resolveClientOptions(options: ClientOptions = {}): ResolvedClientOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  const apiKey = options.apiKey ?? process.env.MEGAOPTIM_API_KEY ?? ''
  if (typeof apiKey !== 'string' || apiKey === '') {
    throw new TypeError('apiKey is required: pass { apiKey } or set the MEGAOPTIM_API_KEY environment variable')
  }
  // A header value with spaces or control characters would make undici throw with the value in its message.
  if (!/^[\x21-\x7e]+$/.test(apiKey)) {
    throw new TypeError(`apiKey must be printable ASCII without spaces (got ${apiKey.length} characters; check for a stray newline or quote)`)
  }
  const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '')
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TypeError(`endpoint must be an http(s) URL such as ${DEFAULT_ENDPOINT}, got "${endpoint}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`endpoint must be an http(s) URL such as ${DEFAULT_ENDPOINT}, got "${endpoint}"`)
  }
  if (url.username || url.password) throw new TypeError('endpoint must not contain credentials; pass the key as apiKey')
  // Paths are appended to the endpoint, and a query might hold a secret that errors would repeat.
  if (url.search || url.hash) throw new TypeError(`endpoint must not have a query or fragment, got "${url.origin}${url.pathname}?…"`)
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new TypeError(`onEvent must be a function, got ${describe(options.onEvent)}`)
  }
  return {
    apiKey,
    endpoint,
    rateLimits: resolveRateLimits(options.rateLimit),
    maxInFlightJobs: whole('maxInFlightJobs', options.maxInFlightJobs, 8, 1),
    requestTimeout: whole('requestTimeout', options.requestTimeout, 60_000, 1),
    maxAttempts: whole('maxAttempts', options.maxAttempts, 5, 1),
    deadline: whole('deadline', options.deadline, 600_000, 1),
    deadlineGiven: options.deadline !== undefined,
    pollTimeoutSeconds: whole('pollTimeout', options.pollTimeout, 120, 1, 300),
    downloadConcurrency: whole('downloadConcurrency', options.downloadConcurrency, 8, 1),
    retryBaseDelay: whole('retryBaseDelay', options.retryBaseDelay, 500, 0),
    retryMaxDelay: whole('retryMaxDelay', options.retryMaxDelay, 30_000, 0),
    maxBatchSize: whole('maxBatchSize', options.maxBatchSize, 5, 1, 5),
    onEvent: options.onEvent ?? (() => {}),
  }
}

function resolveRateLimits(value: ClientOptions['rateLimit']): Record<EndpointKind, RateLimitSpec> {
  if (value === undefined || typeof value === 'number' || isSpec(value)) {
    const spec = rateSpec('rateLimit', value)
    return { optimize: spec, result: spec, info: spec }
  }
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`rateLimit must be a number of requests per minute, { requests, perMs }, or { optimize, result, info }, got ${describe(value)}`)
  }
  for (const key of Object.keys(value)) {
    if (key !== 'optimize' && key !== 'result' && key !== 'info') {
      throw new TypeError(`rateLimit has an unknown endpoint "${key}"; use optimize, result or info`)
    }
  }
  return {
    optimize: rateSpec('rateLimit.optimize', value.optimize),
    result: rateSpec('rateLimit.result', value.result),
    info: rateSpec('rateLimit.info', value.info),
  }
}

function isSpec(value: unknown): value is RateLimitSpec {
  return typeof value === 'object' && value !== null && ('requests' in value || 'perMs' in value)
}

function rateSpec(name: string, value: number | RateLimitSpec | undefined): RateLimitSpec {
  if (value === undefined) return DEFAULT_RATE_LIMIT
  if (typeof value === 'number') return { requests: whole(name, value, 120, 1), perMs: 60_000 }
  if (!isSpec(value)) throw new TypeError(`${name} must be a number of requests per minute or { requests, perMs }, got ${describe(value)}`)
  // Both halves are required: a window without a count (or the reverse) is a mistake, not a default.
  const requests = whole(`${name}.requests`, value.requests ?? null, 120, 1)
  const perMs = whole(`${name}.perMs`, value.perMs ?? null, 60_000, 1)
  return { requests, perMs }
}

function whole(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`
    throw new TypeError(`${name} must be a whole number ${range}, got ${describe(value)}`)
  }
  return value
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `"${value}"`
  if (value === null || value === undefined) return 'nothing'
  if (typeof value === 'function') return 'a function'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
