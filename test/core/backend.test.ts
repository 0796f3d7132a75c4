/**
 * The one backend selector: empty keys mean no key, malformed keys are refused before any request, and the
 * key is never echoed.
 */
import { describe, expect, it } from 'vitest'
import { selectBackend } from '../../src/core/backend.ts'
import { resolveOptions } from '../../src/core/options.ts'

const KEY = 'abcdefghijklmnopqrstuvwxyz012345'

describe('selectBackend', () => {
  it.each([
    ['apiKey: ""', { apiKey: '' }, {}],
    ['apiKey of spaces', { apiKey: '   ' }, {}],
    ['MEGAOPTIM_API_KEY=', {}, { MEGAOPTIM_API_KEY: '' }],
  ])('%s means no key: the embedded engine, with a note saying the key is empty', (_, options, env) => {
    const choice = selectBackend({ ...options, env })
    expect(choice.backend).toEqual({ kind: 'embedded' })
    expect(choice.embeddedReason).toBe('the API key is empty')
    expect(resolveOptions(options, { env }).backend).toEqual({ kind: 'embedded' })
  })

  it('an empty key with an endpoint (a fork CI without secrets) builds with the embedded engine and says why', () => {
    const resolved = resolveOptions({ apiKey: '', endpoint: 'http://127.0.0.1:9000/v1' }, { env: {} })
    expect(resolved.backend).toEqual({ kind: 'embedded' })
    expect(resolved.embeddedReason).toBe('the API key is empty (http://127.0.0.1:9000/v1 needs one, so it is not used)')
  })

  it('an empty option falls through to MEGAOPTIM_API_KEY', () => {
    expect(selectBackend({ apiKey: '', env: { MEGAOPTIM_API_KEY: KEY } }).backend).toMatchObject({ kind: 'remote', hosted: true })
  })

  it.each([
    ['too short', 'abc123', /a MegaOptim key has 32 letters and digits, this one has 6/],
    ['a space inside', `${KEY.slice(0, 16)} ${KEY.slice(16)}`, /contains a space/],
    ['quotes from a copy-paste', `"${KEY}"`, /contains quotes/],
    ['a pasted assignment', `MEGAOPTIM_API_KEY=${KEY}`, /only letters and digits/],
  ])('the hosted API refuses a key with %s before any request, without echoing it', (_, key, message) => {
    for (const input of [{ apiKey: key }, { env: { MEGAOPTIM_API_KEY: key } }]) {
      let error: unknown
      try {
        selectBackend(input)
      } catch (e) {
        error = e
      }
      expect(error).toMatchObject({ code: 'MEGAOPTIM_INVALID_OPTION' })
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).toMatch(input.env ? /MEGAOPTIM_API_KEY is not a valid API key/ : /apiKey is not a valid API key/)
      expect((error as Error).message).not.toContain(key.trim())
      expect(() => resolveOptions(input.env ? {} : { apiKey: key }, { env: input.env ?? {} })).toThrow(message)
    }
  })

  it('a self-hosted server may issue other key shapes, but not ones that cannot travel in a header', () => {
    expect(selectBackend({ apiKey: 'team-key_01', endpoint: 'http://127.0.0.1:1/v1' }).backend).toMatchObject({ kind: 'remote', hosted: false })
    expect(() => selectBackend({ apiKey: 'a key', endpoint: 'http://127.0.0.1:1/v1' })).toThrow(/Check the key issued by http:\/\/127\.0\.0\.1:1\/v1/)
  })

  it('a non-string key is refused without printing it', () => {
    expect(() => selectBackend({ apiKey: 12345 })).toThrow('[megaoptim] apiKey must be a string, got number')
  })
})

describe('the plugin options around the backend', () => {
  it('takes enabled and fallback, and refuses anything else for them', () => {
    expect(resolveOptions({}, { env: {} })).toMatchObject({ enabled: true, fallback: false })
    expect(resolveOptions({ enabled: false, fallback: 'embedded' }, { env: {} })).toMatchObject({ enabled: false, fallback: 'embedded' })
    expect(() => resolveOptions({ fallback: 'local' as never })).toThrow('[megaoptim] fallback must be "embedded" or false, got "local"')
    expect(() => resolveOptions({ enabled: 'no' as never })).toThrow('[megaoptim] enabled must be true or false, got "no"')
  })
})
