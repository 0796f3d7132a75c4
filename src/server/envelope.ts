/**
 * The API's answers. The HTTP status is always 200; the outcome is the body's `code`
 * (see megaoptim-api.md, "Envelopes").
 */
export type ApiCode = 200 | 202 | 400 | 401 | 404 | 409 | 429 | 455 | 500 | 504

export interface ErrorEnvelope {
  status: 'error'
  code: ApiCode
  /** Plain strings, or Laravel's `{ field: [messages] }` on `/register`. */
  errors: string[] | Record<string, string[]>
}

/** Thrown by handlers; the error handler turns it into the envelope. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  readonly code: ApiCode
  readonly errors: string[] | Record<string, string[]>
  /** Extra headers for the answer (a 429's X-RateLimit-Reset). */
  headers?: Record<string, string>

  constructor(code: ApiCode, errors: string | string[] | Record<string, string[]>) {
    const list = typeof errors === 'string' ? [errors] : errors
    super(Array.isArray(list) ? list.join('; ') : Object.values(list).flat().join('; '))
    this.code = code
    this.errors = list
  }
}

export function errorEnvelope(code: ApiCode, errors: string | string[] | Record<string, string[]>): ErrorEnvelope {
  return { status: 'error', code, errors: typeof errors === 'string' ? [errors] : errors }
}

export function processingEnvelope(processId: string): { status: 'processing'; code: 202; process_id: string } {
  return { status: 'processing', code: 202, process_id: processId }
}
