/**
 * One HTTP exchange with the API over undici, turned into either the parsed JSON envelope or a typed
 * {@link MegaOptimError}. No retries here: the scheduler decides what to try again.
 */
import { request, type Dispatcher, type FormData } from 'undici'
import {
  AuthError,
  InvalidResponseError,
  type MegaOptimError,
  NetworkError,
  RateLimitError,
  ServerError,
  TimeoutError,
  TokensError,
  ValidationError,
  safeCause,
  scrub,
} from './errors.ts'
import { seconds } from './duration.ts'

/** Which rate-limited endpoint a request belongs to. */
export type EndpointKind = 'optimize' | 'result' | 'info'

export const ENDPOINT_PATHS: Record<EndpointKind, string> = {
  optimize: '/optimize',
  result: '/optimize/{id}/result',
  info: '/users/info',
}

export interface ApiEnvelope {
  status?: unknown
  code: number
  errors?: unknown
  [key: string]: unknown
}

export interface ApiRequest {
  kind: EndpointKind
  /** Path under the endpoint base, e.g. `/optimize`. */
  path: string
  method: 'GET' | 'POST'
  body?: FormData | URLSearchParams
  timeoutMs: number
  signal?: AbortSignal
  /** Names of the files in the request, for messages. */
  files?: string[]
  /** Called when the request is handed to the socket (the moment the rate limiter paces on). */
  onWire?: () => void
  /** Told what every answer said about the rate limit (before a 429 is thrown). */
  onRateHeaders?: (headers: RateHeaders) => void
}

/**
 * What an answer says about the rate limit, Laravel style (what the hosted API and `megaoptim serve`
 * send): `X-RateLimit-Limit` and `X-RateLimit-Remaining` on every answer, `Retry-After` (seconds or an
 * HTTP date) and `X-RateLimit-Reset` (a Unix time in seconds, or seconds from now) with a 429.
 */
export interface RateHeaders {
  limit?: number
  remaining?: number
  /** ms from now until the window resets. */
  resetMs?: number
  /** ms from now, from `Retry-After`. */
  retryAfterMs?: number
}

export interface HttpContext {
  dispatcher: Dispatcher
  /** Base URL without trailing slash, e.g. `https://api.megaoptim.com/v1`. */
  base: string
  apiKey: string
}

/** Cap on an API answer's size: envelopes are small, a runaway body is a broken server. */
const MAX_ENVELOPE_BYTES = 8 * 1024 * 1024

/** Perform one API request; resolves to the envelope of any `code` the caller must interpret (200, 202). */
export async function callApi(ctx: HttpContext, req: ApiRequest): Promise<ApiEnvelope> {
  const endpoint = req.path
  const secrets = [ctx.apiKey]
  const { signal, cleanup } = withTimeout(req.timeoutMs, req.signal)
  let res: Dispatcher.ResponseData
  try {
    const headers: Record<string, string> = { 'x-api-key': ctx.apiKey, accept: 'application/json' }
    let body: FormData | string | undefined
    if (req.body instanceof URLSearchParams) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = req.body.toString()
    } else {
      body = req.body
    }
    const dispatcher = req.onWire ? ctx.dispatcher.compose(onRequestStart(req.onWire)) : ctx.dispatcher
    res = await request(`${ctx.base}${req.path}`, { method: req.method, headers, body, signal, dispatcher })
  } catch (error) {
    cleanup()
    throw transportError(error, req, signal, secrets)
  }
  let text: string
  try {
    text = await readCapped(res.body, MAX_ENVELOPE_BYTES)
  } catch (error) {
    throw transportError(error, req, signal, secrets)
  } finally {
    cleanup()
  }
  const what = describe(req)
  const retryAfterMs = parseRetryAfter(res.headers['retry-after'])
  req.onRateHeaders?.(parseRateHeaders(res.headers))
  if (res.statusCode === 429) {
    throw new RateLimitError(
      `${what} was rate limited (HTTP 429${retryAfterMs !== undefined ? `, Retry-After ${Math.ceil(retryAfterMs / 1000)} s` : ''}). If this repeats, lower rateLimit.`,
      { endpoint, apiCode: 429, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
    )
  }
  let envelope: ApiEnvelope
  try {
    envelope = parseEnvelope(text)
  } catch {
    if (res.statusCode >= 500) {
      throw new ServerError(`${what} failed with HTTP ${res.statusCode} and no JSON body. The API may be down; try again later.`, { endpoint })
    }
    throw new InvalidResponseError(
      `${what} answered HTTP ${res.statusCode} with a body that is not the JSON envelope the API promises (${describeBody(text, secrets)}). Check that the endpoint ${ctx.base} is a MegaOptim API.`,
      { endpoint },
    )
  }
  if (envelope.code === 200 || envelope.code === 202) return envelope
  throw codeError(envelope, req, retryAfterMs, secrets)
}

/** An undici interceptor that reports when a request is handed to the socket (legacy or new handler API). */
function onRequestStart(notify: () => void): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const watched = new Proxy(handler, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown
        if ((prop === 'onRequestStart' || prop === 'onConnect') && typeof value === 'function') {
          return (...args: unknown[]) => {
            notify()
            return (value as (...a: unknown[]) => unknown).apply(target, args)
          }
        }
        // Bound to the real handler: undici's handlers keep state in private fields a Proxy cannot reach.
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      },
    })
    return dispatch(opts, watched)
  }
}

/** Map an error envelope to its typed error. */
function codeError(envelope: ApiEnvelope, req: ApiRequest, retryAfterMs: number | undefined, secrets: string[]): MegaOptimError {
  const endpoint = req.path
  const what = describe(req)
  const apiCode = envelope.code
  const said = firstError(envelope, secrets)
  const details = { endpoint, apiCode }
  switch (apiCode) {
    case 400:
      return new ValidationError(`${what} was refused as invalid (code 400${said}). Check the file is a JPEG, PNG or GIF and the options are valid.`, details)
    case 401:
      return new AuthError(`${what} was refused: the API key is not allowed to do this (code 401${said}). Check MEGAOPTIM_API_KEY is the key of this account and of this endpoint.`, details)
    case 404:
      if (req.kind === 'result') {
        return new ServerError(`${what} answered 404: the job is unknown to the API (${said.slice(2) || 'expired or lost'}). Run again to resubmit the images.`, details, 'MEGAOPTIM_JOB_FAILED')
      }
      return new AuthError(`${what} was refused: the API does not know this API key (code 404${said}). Check MEGAOPTIM_API_KEY (copy it again from your MegaOptim dashboard) and that the endpoint is the server that issued it.`, details)
    case 429:
      return new RateLimitError(
        `${what} was rate limited (code 429${said}${retryAfterMs !== undefined ? `, Retry-After ${Math.ceil(retryAfterMs / 1000)} s` : ''}). If this repeats, lower rateLimit.`,
        { ...details, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
      )
    case 455:
      return new TokensError(`${what} was refused: not enough tokens for ${req.files?.length ?? 'these'} image(s) (code 455${said}). Buy tokens for this account, then run again; nothing more is sent in this run.`, details)
    case 504:
      return new ServerError(`${what}: the job failed or timed out on the server (code 504${said}). Run again later; the original is kept.`, details, 'MEGAOPTIM_JOB_FAILED')
    default:
      if (apiCode >= 500) {
        return new ServerError(`${what} failed on the server (code ${apiCode}${said}). If it keeps failing, try again later.`, details)
      }
      return new InvalidResponseError(`${what} answered an unknown code ${apiCode}${said}. Check that the endpoint is a MegaOptim API.`, details, false)
  }
}

/** Turn a thrown transport error into a NetworkError / TimeoutError, or rethrow the caller's abort. */
export function transportError(error: unknown, req: { method?: string; path: string; files?: string[]; timeoutMs?: number }, signal: AbortSignal, secrets: string[]): unknown {
  const what = describe(req)
  const callerAborted = (signal as AbortSignal & { callerSignal?: AbortSignal }).callerSignal?.aborted
  if (callerAborted) return (signal as AbortSignal & { callerSignal: AbortSignal }).callerSignal.reason
  const cause = safeCause(error, secrets)
  if (signal.aborted) {
    const within = req.timeoutMs !== undefined ? ` within ${seconds(req.timeoutMs)}` : ''
    return new TimeoutError(`${what} got no complete answer${within}. The API may be down or overloaded; check the network and the endpoint.`, { endpoint: req.path, cause })
  }
  return new NetworkError(`${what} failed on the network (${cause.code ?? cause.name}: ${cause.message}). Check the connection and that the endpoint URL is right.`, { endpoint: req.path, cause })
}

/** A signal that fires on the caller's abort or after `ms`; `callerSignal` lets errors tell which. */
export function withTimeout(ms: number, caller?: AbortSignal): { signal: AbortSignal; cleanup: () => void } {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${ms} ms`)), ms)
  const onAbort = () => controller.abort(caller?.reason)
  if (caller) {
    if (caller.aborted) controller.abort(caller.reason)
    else caller.addEventListener('abort', onAbort, { once: true })
  }
  const signal = controller.signal as AbortSignal & { callerSignal?: AbortSignal }
  if (caller) signal.callerSignal = caller
  return {
    signal,
    cleanup: () => {
      clearTimeout(timer)
      caller?.removeEventListener('abort', onAbort)
    },
  }
}

export async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > max) {
      body.destroy()
      throw new Error(`answer larger than ${max} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseEnvelope(text: string): ApiEnvelope {
  const value = JSON.parse(text) as unknown
  if (!value || typeof value !== 'object' || typeof (value as ApiEnvelope).code !== 'number') {
    throw new Error('not an envelope')
  }
  return value as ApiEnvelope
}

function firstError(envelope: ApiEnvelope, secrets: string[]): string {
  const errors = envelope.errors
  const first = Array.isArray(errors) ? errors[0] : undefined
  return typeof first === 'string' && first ? `: ${scrub(first, secrets).slice(0, 300)}` : ''
}

function describeBody(text: string, secrets: string[]): string {
  if (!text) return 'empty body'
  const head = scrub(text.slice(0, 80), secrets).replace(/\s+/g, ' ')
  return `${text.length} bytes starting "${head}"`
}

function describe(req: { method?: string; path: string; files?: string[] }): string {
  const files = req.files?.length ? ` for ${req.files.join(', ')}` : ''
  return `${req.method ?? 'POST'} ${req.path}${files}`
}

/** `Retry-After` is either delta-seconds or an HTTP date; anything else is ignored. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value
  if (raw === undefined || raw.trim() === '') return undefined
  const seconds = Number(raw)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(raw)
  if (Number.isFinite(date)) return Math.max(0, date - now)
  return undefined
}

/** Reads the rate-limit headers of an answer; absent or unparseable ones are left out. */
export function parseRateHeaders(headers: Record<string, string | string[] | undefined>, now = Date.now()): RateHeaders {
  const count = (name: string): number | undefined => {
    const raw = headers[name]
    const value = Number(Array.isArray(raw) ? raw[0] : raw)
    return raw !== undefined && Number.isFinite(value) && value >= 0 ? value : undefined
  }
  const out: RateHeaders = {}
  const limit = count('x-ratelimit-limit')
  const remaining = count('x-ratelimit-remaining')
  const reset = count('x-ratelimit-reset')
  const retryAfterMs = parseRetryAfter(headers['retry-after'], now)
  if (limit !== undefined && limit >= 1) out.limit = Math.floor(limit)
  if (remaining !== undefined) out.remaining = Math.floor(remaining)
  // Laravel sends a Unix time; others (fastify's default) seconds from now. No window is a billion seconds long.
  if (reset !== undefined) out.resetMs = reset > 1e9 ? Math.max(0, reset * 1000 - now) : reset * 1000
  if (retryAfterMs !== undefined) out.retryAfterMs = retryAfterMs
  return out
}
