/**
 * The client's errors: subclasses of the root {@link MegaOptimError} (`src/contract/errors.ts`, which
 * holds the table of every code), one per way a call to the API can fail.
 *
 * The API key never appears in a message, a stack or a `cause`: errors from undici are copied into a
 * plain {@link SafeCause} (name, code, message with any key scrubbed) instead of being attached as is.
 */
import { MegaOptimError, type MegaOptimErrorDetails } from '../contract/errors.ts'

export {
  ArgumentError,
  MegaOptimError,
  isMegaOptimError,
  safeCause,
  scrub,
  type MegaOptimErrorCode,
  type MegaOptimErrorDetails,
  type SafeCause,
} from '../contract/errors.ts'

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

