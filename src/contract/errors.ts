/**
 * The root error of everything the package throws, and the one table of stable codes. The client's
 * subclasses live in `src/client/errors.ts`; the server and the engine keep internal error types and
 * speak the API's envelope / per-item `success: 0` outward. Every error has a stable `code`; callers branch on `code`,
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
 * | `MEGAOPTIM_INVALID_ARGUMENT`  | `ArgumentError`      | –            | no      | a call's argument (image params, CLI flag) has a bad value |
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
  | 'MEGAOPTIM_INVALID_ARGUMENT'
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

/**
 * A bad value in what a caller passed: `argument` names it, `allowed` says what would do. The plugin's
 * `OptionsError` is one of these; other layers re-word it for their users (a CLI flag, a form field).
 */
export class ArgumentError extends MegaOptimError {
  override name = 'ArgumentError'
  readonly argument: string
  readonly allowed: string
  constructor(
    argument: string,
    allowed: string,
    value: unknown,
    code: 'MEGAOPTIM_INVALID_ARGUMENT' | 'MEGAOPTIM_INVALID_OPTION' = 'MEGAOPTIM_INVALID_ARGUMENT',
    prefix = '',
  ) {
    super(code, `${prefix}${argument} must be ${allowed}, got ${showValue(value)}`)
    this.argument = argument
    this.allowed = allowed
  }
}

/** A value as a message shows it: strings quoted, objects as JSON, never anything huge. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value)
  }
  try {
    return JSON.stringify(value) ?? typeof value
  } catch {
    return typeof value
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
