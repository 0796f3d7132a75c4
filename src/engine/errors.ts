/**
 * Engine failures carry a stable `code`. The server turns the input's own faults (unsupported, corrupt,
 * too large, empty) into a per-item `success: 0` with `error: message`, and the caller keeps the
 * original bytes; the other codes fail the job as a server fault.
 */
export type EngineErrorCode =
  | 'ENGINE_UNSUPPORTED_FORMAT'
  | 'ENGINE_CORRUPT_INPUT'
  | 'ENGINE_TOO_LARGE'
  | 'ENGINE_EMPTY_INPUT'
  | 'ENGINE_ABORTED'
  | 'ENGINE_SHARP_MISSING'
  | 'ENGINE_FAILED'

export class EngineError extends Error {
  override readonly name = 'EngineError'
  readonly code: EngineErrorCode

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** libvips reports every decode problem as a plain Error: sort them by their message. */
export function toEngineError(err: unknown, format: string): EngineError {
  if (err instanceof EngineError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (/pixel limit/i.test(message)) {
    return new EngineError(
      'ENGINE_TOO_LARGE',
      `The ${format} image has more pixels than the limit (decompression bomb?); the original is kept.`,
      { cause: err },
    )
  }
  if (/premature end|truncated|corrupt|bogus|invalid|unexpected end|not a known|unsupported image format|bad |read error|out of order|damaged|crc|Not a/i.test(message)) {
    return new EngineError(
      'ENGINE_CORRUPT_INPUT',
      `The ${format} data is truncated or corrupt (${firstLine(message)}); the original is kept.`,
      { cause: err },
    )
  }
  return new EngineError('ENGINE_FAILED', `Optimizing the ${format} image failed: ${firstLine(message)}`, { cause: err })
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim()
}
