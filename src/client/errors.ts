/**
 * Typed errors of the MegaOptim client. Every error has a stable `code`; callers branch on `code`,
 * never on the message. Messages say what happened, to which file, at which endpoint, and what to do.
 *
 * The API key never appears in a message, a stack or a `cause`: errors from undici are copied into a
 * plain {@link SafeCause} (name, code, message with any key scrubbed) instead of being attached as is.
 *
 * | code                          | class                | apiCode      | retried | what it means                                       |
 * |-------------------------------|----------------------|--------------|---------|-----------------------------------------------------|
 * | `MEGAOPTIM_AUTH`              | `AuthError`          | 401, 404     | no      | the key is unknown or not allowed; breaker opens    |
 * | `MEGAOPTIM_TOKENS_EXHAUSTED`  | `TokensError`        | 455          | no      | not enough tokens for the batch; breaker opens      |
 * | `MEGAOPTIM_RATE_LIMITED`      | `RateLimitError`     | 429          | yes     | too many requests; retried after `Retry-After`      |
 * | `MEGAOPTIM_VALIDATION`        | `ValidationError`    | 400          | no      | the API refused a parameter or a file               |
 * | `MEGAOPTIM_UNSUPPORTED_INPUT` | `ValidationError`    | –            | no      | not a JPEG/PNG/GIF/WebP, empty, or unreadable: never sent |
 * | `MEGAOPTIM_SERVER`            | `ServerError`        | 500, 5xx     | yes     | the API had an internal error                       |
 * | `MEGAOPTIM_JOB_FAILED`        | `ServerError`        | 504, 404     | no      | the job failed, timed out or vanished server-side   |
 * | `MEGAOPTIM_TIMEOUT`           | `TimeoutError`       | –            | yes     | one request took longer than `requestTimeout`       |
 * | `MEGAOPTIM_DEADLINE`          | `TimeoutError`       | –            | no      | the whole `optimize()` call ran past `deadline`     |
 * | `MEGAOPTIM_NETWORK`           | `NetworkError`       | –            | yes     | connection refused, reset, DNS failure, ...         |
 * | `MEGAOPTIM_INVALID_RESPONSE`  | `InvalidResponseError` | –          | yes     | the body was not the JSON the contract promises     |
 * | `MEGAOPTIM_DOWNLOAD`          | `DownloadError`      | –            | network only | a result download failed its checks            |
 * | `MEGAOPTIM_CIRCUIT_OPEN`      | `CircuitOpenError`   | of the cause | no      | not sent: an earlier auth/token error stopped the client |
 * | `MEGAOPTIM_INTERNAL`          | `MegaOptimError`     | –            | no      | a bug in the client; the original is kept (please report) |
 * | `MEGAOPTIM_INVALID_OPTION`    | `OptionsError`       | –            | no      | a plugin option has a bad value; the build stops at start |
 * | `MEGAOPTIM_BUILD_FAILED`      | `BuildError`         | –            | no      | `failOnError` is on and an image could not be optimized |
 */

export type MegaOptimErrorCode =
  | 'MEGAOPTIM_AUTH'
  | 'MEGAOPTIM_TOKENS_EXHAUSTED'
  | 'MEGAOPTIM_RATE_LIMITED'
  | 'MEGAOPTIM_VALIDATION'
  | 'MEGAOPTIM_UNSUPPORTED_INPUT'
  | 'MEGAOPTIM_SERVER'
  | 'MEGAOPTIM_JOB_FAILED'
  | 'MEGAOPTIM_TIMEOUT'
  | 'MEGAOPTIM_DEADLINE'
  | 'MEGAOPTIM_NETWORK'
  | 'MEGAOPTIM_INVALID_RESPONSE'
  | 'MEGAOPTIM_DOWNLOAD'
  | 'MEGAOPTIM_CIRCUIT_OPEN'
  | 'MEGAOPTIM_INTERNAL'
  | 'MEGAOPTIM_INVALID_OPTION'
  | 'MEGAOPTIM_BUILD_FAILED'

export interface MegaOptimErrorDetails {
  /** The API's numeric `code` from the JSON body, when there was one. */
  apiCode?: number
  /** The input's name (file name or URL basename) this error is about. */
  file?: string
  /** The endpoint path, e.g. `/optimize`, `/users/info`, or the download URL's path. */
  endpoint?: string
  /** A sanitized copy of the underlying error. */
  cause?: SafeCause
}

/** A plain, key-free copy of a lower-level error (undici, node:fs, ...). */
export interface SafeCause {
  name: string
  code?: string
  message: string
}

export class MegaOptimError extends Error {
  override name = 'MegaOptimError'
  readonly code: MegaOptimErrorCode
  readonly apiCode?: number
  readonly file?: string
  readonly endpoint?: string
  /** Whether the scheduler may try the same request again. */
  readonly retryable: boolean

  constructor(code: MegaOptimErrorCode, message: string, details: MegaOptimErrorDetails = {}, retryable = false) {
    super(message, details.cause ? { cause: details.cause } : undefined)
    this.code = code
    if (details.apiCode !== undefined) this.apiCode = details.apiCode
    if (details.file !== undefined) this.file = details.file
    if (details.endpoint !== undefined) this.endpoint = details.endpoint
    this.retryable = retryable
  }

  /** The same error about one particular input (used when one request's error applies to all its files). */
  forFile(file: string): MegaOptimError {
    const copy = Object.create(Object.getPrototypeOf(this) as object) as MegaOptimError
    Object.assign(copy, this, { file })
    // A message that already names the file (e.g. "POST /optimize for a.png, b.png ...") is not prefixed again.
    const message = this.message.includes(file) ? this.message : `${file}: ${this.message}`
    Object.defineProperty(copy, 'message', { value: message, enumerable: false, writable: true, configurable: true })
    Object.defineProperty(copy, 'stack', { value: `${copy.name}: ${copy.message}\n${(this.stack ?? '').split('\n').slice(1).join('\n')}`, enumerable: false, writable: true, configurable: true })
    if (this.cause !== undefined) Object.defineProperty(copy, 'cause', { value: this.cause, enumerable: false, writable: true, configurable: true })
    return copy
  }
}

export class AuthError extends MegaOptimError {
  override name = 'AuthError'
  constructor(message: string, details: MegaOptimErrorDetails = {}) {
    super('MEGAOPTIM_AUTH', message, details)
  }
}

export class TokensError extends MegaOptimError {
  override name = 'TokensError'
  constructor(message: string, details: MegaOptimErrorDetails = {}) {
    super('MEGAOPTIM_TOKENS_EXHAUSTED', message, details)
  }
}

export class RateLimitError extends MegaOptimError {
  override name = 'RateLimitError'
  /** What `Retry-After` asked for, in ms, when the answer had one. */
  readonly retryAfterMs?: number
  constructor(message: string, details: MegaOptimErrorDetails & { retryAfterMs?: number } = {}) {
    super('MEGAOPTIM_RATE_LIMITED', message, details, true)
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs
  }
}

export class ValidationError extends MegaOptimError {
  override name = 'ValidationError'
  constructor(message: string, details: MegaOptimErrorDetails = {}, code: 'MEGAOPTIM_VALIDATION' | 'MEGAOPTIM_UNSUPPORTED_INPUT' = 'MEGAOPTIM_VALIDATION') {
    super(code, message, details)
  }
}

export class ServerError extends MegaOptimError {
  override name = 'ServerError'
  constructor(
    message: string,
    details: MegaOptimErrorDetails = {},
    code: 'MEGAOPTIM_SERVER' | 'MEGAOPTIM_JOB_FAILED' = 'MEGAOPTIM_SERVER',
  ) {
    super(code, message, details, code === 'MEGAOPTIM_SERVER')
  }
}

export class TimeoutError extends MegaOptimError {
  override name = 'TimeoutError'
  constructor(message: string, details: MegaOptimErrorDetails = {}, code: 'MEGAOPTIM_TIMEOUT' | 'MEGAOPTIM_DEADLINE' = 'MEGAOPTIM_TIMEOUT') {
    super(code, message, details, code === 'MEGAOPTIM_TIMEOUT')
  }
}

export class NetworkError extends MegaOptimError {
  override name = 'NetworkError'
  constructor(message: string, details: MegaOptimErrorDetails = {}) {
    super('MEGAOPTIM_NETWORK', message, details, true)
  }
}

export class InvalidResponseError extends MegaOptimError {
  override name = 'InvalidResponseError'
  constructor(message: string, details: MegaOptimErrorDetails = {}, retryable = true) {
    super('MEGAOPTIM_INVALID_RESPONSE', message, details, retryable)
  }
}

export class DownloadError extends MegaOptimError {
  override name = 'DownloadError'
  constructor(message: string, details: MegaOptimErrorDetails = {}, retryable = false) {
    super('MEGAOPTIM_DOWNLOAD', message, details, retryable)
  }
}

/** An input that was never sent because the breaker had opened; `reason` is the error that opened it. */
export class CircuitOpenError extends MegaOptimError {
  override name = 'CircuitOpenError'
  readonly reason: MegaOptimError
  constructor(reason: MegaOptimError, file?: string) {
    const what = file ? `${file} was not sent` : 'Nothing was sent'
    const why = reason.code === 'MEGAOPTIM_TOKENS_EXHAUSTED' ? 'the account is out of tokens' : 'the API key was refused'
    const fix =
      reason.code === 'MEGAOPTIM_TOKENS_EXHAUSTED'
        ? 'Buy tokens for this account, then run again.'
        : 'Check MEGAOPTIM_API_KEY and the endpoint, then run again.'
    super(
      'MEGAOPTIM_CIRCUIT_OPEN',
      `${what}: ${why} (${reason.endpoint ?? 'the API'} answered ${reason.apiCode ?? reason.code}), so the client stopped sending. The original is kept. ${fix}`,
      { apiCode: reason.apiCode, endpoint: reason.endpoint, ...(file ? { file } : {}) },
    )
    this.reason = reason
  }

  override forFile(file: string): CircuitOpenError {
    return new CircuitOpenError(this.reason, file)
  }
}

/** Copy an unknown thrown value into a key-free {@link SafeCause}; `secrets` are scrubbed from the text. */
export function safeCause(error: unknown, secrets: readonly string[] = []): SafeCause {
  const err = error as { name?: unknown; code?: unknown; message?: unknown } | null
  const name = typeof err?.name === 'string' ? err.name : 'Error'
  const message = scrub(typeof err?.message === 'string' ? err.message : String(error), secrets)
  const code = typeof err?.code === 'string' ? err.code : undefined
  return code ? { name, code, message } : { name, message }
}

/** Replace every occurrence of each secret (of a sensible length) with `***`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('***')
  }
  return out
}

export function isMegaOptimError(error: unknown): error is MegaOptimError {
  return error instanceof MegaOptimError
}
