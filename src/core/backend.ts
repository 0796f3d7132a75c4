/**
 * The one backend selector, used by the plugin (through `resolveOptions()`) and by `megaoptim optimize`:
 * from a key, an endpoint and the environment, where images are optimized, and the one line that tells the
 * user why when it is not where they might think.
 *
 * An empty key is no key: a fork's CI has empty secrets, and that must not break its build. A key that
 * cannot be a key (wrong length, spaces, quotes from a copy-paste) is refused here, before any request.
 */
import { MegaOptimError } from '../contract/errors.ts'

export const DEFAULT_ENDPOINT = 'https://api.megaoptim.com/v1'

/** Holds the API key so that logging, `JSON.stringify` or `util.inspect` never shows it. */
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

/** Where images are optimized. */
export type Backend =
  | { kind: 'remote'; endpoint: string; apiKey: Secret; hosted: boolean }
  | { kind: 'embedded' }

/** What may step in when the API cannot be used: `'embedded'`, or nothing. */
export type Fallback = 'embedded' | false

export interface BackendChoice {
  backend: Backend
  /** Why the embedded engine is used (the start of the one line printed when it starts). */
  embeddedReason: string
}

export interface BackendInput {
  /** From the `apiKey` option; `undefined` or blank reads `MEGAOPTIM_API_KEY`. */
  apiKey?: unknown
  /** An http(s) URL, already validated; undefined for the hosted API. */
  endpoint?: string
  env?: Record<string, string | undefined>
}

/** The hosted API's keys: "Keys in the wild are 32 alphanumeric characters" (docs/megaoptim-api.md). */
const HOSTED_KEY = /^[A-Za-z0-9]{32}$/
/** Any compatible server: a key must at least fit in an HTTP header as one token. */
const ANY_KEY = /^[A-Za-z0-9._~+/=-]{1,256}$/

export class BackendError extends MegaOptimError {
  override name = 'BackendError'
  constructor(message: string) {
    super('MEGAOPTIM_INVALID_OPTION', message)
  }
}

/** Why `key` cannot be a key for `endpoint`, described without a character of it; null when it may be one. */
export function malformedKey(key: string, hosted: boolean): string | null {
  if (/\s/.test(key)) return 'it contains a space or a line break'
  if (/["'`]/.test(key)) return 'it contains quotes (copy the key without them)'
  if (hosted && !HOSTED_KEY.test(key)) {
    return /^[A-Za-z0-9]*$/.test(key)
      ? `a MegaOptim key has 32 letters and digits, this one has ${key.length}`
      : 'a MegaOptim key has only letters and digits'
  }
  if (!hosted && !ANY_KEY.test(key)) return key.length > 256 ? `it is ${key.length} characters long` : 'it contains characters no API key has'
  return null
}

export function selectBackend(input: BackendInput): BackendChoice {
  const env = input.env ?? {}
  if (input.apiKey !== undefined && typeof input.apiKey !== 'string') {
    // Never echo what could be a key.
    throw new BackendError(`[megaoptim] apiKey must be a string, got ${input.apiKey === null ? 'null' : typeof input.apiKey}`)
  }
  const fromOption = input.apiKey?.trim() ? input.apiKey.trim() : undefined
  const fromEnv = env.MEGAOPTIM_API_KEY?.trim() ? env.MEGAOPTIM_API_KEY.trim() : undefined
  const key = fromOption ?? fromEnv
  const emptyGiven = input.apiKey === '' || (typeof input.apiKey === 'string' && !fromOption) || (env.MEGAOPTIM_API_KEY !== undefined && !fromEnv)
  if (!key) {
    const why = emptyGiven ? 'the API key is empty' : 'no API key'
    const skipped = input.endpoint ? ` (${input.endpoint} needs one, so it is not used)` : ''
    return { backend: { kind: 'embedded' }, embeddedReason: `${why}${skipped}` }
  }
  const endpoint = input.endpoint ?? DEFAULT_ENDPOINT
  const hosted = endpoint === DEFAULT_ENDPOINT
  const problem = malformedKey(key, hosted)
  if (problem) {
    const source = fromOption ? 'apiKey' : 'MEGAOPTIM_API_KEY'
    throw new BackendError(
      `[megaoptim] ${source} is not a valid API key: ${problem}. ` +
        (hosted ? 'Copy it again from your MegaOptim dashboard' : `Check the key issued by ${endpoint}`) +
        ', or leave it empty to optimize with the embedded engine.',
    )
  }
  return { backend: { kind: 'remote', endpoint, apiKey: new Secret(key), hosted }, embeddedReason: 'the API could not be used' }
}
