import { describe, expect, it } from 'vitest'
import path from 'node:path'
import { inspect } from 'node:util'
import { DEFAULT_CACHE_DIR, DEFAULT_ENDPOINT, OptionsError, resolveOptions, type Options } from '../../src/core/options.ts'

const KEY = 'abcdefghijklmnopqrstuvwxyz012345'

describe('resolveOptions', () => {
  it('fills every default', () => {
    const r = resolveOptions({}, { cwd: '/project' })
    expect(r).toMatchObject({
      backend: { kind: 'embedded' },
      include: ['**/*.{jpg,jpeg,jpe,png,gif,webp,svg}'],
      exclude: [],
      compression: 'intelligent',
      webp: false,
      keepExif: false,
      cmykToRgb: true,
      maxWidth: 0,
      maxHeight: 0,
      minSize: 0,
      minSavings: { unit: 'bytes', value: 0 },
      cache: path.resolve('/project', DEFAULT_CACHE_DIR),
      cacheMaxAge: 30 * 24 * 60 * 60 * 1000,
      report: false,
      failOnError: false,
      concurrency: undefined,
      rateLimit: undefined,
      logLevel: 'info',
    })
  })

  it.each<[Options, string]>([
    [{ maxWidth: 'abc' as unknown as number }, 'maxWidth must be a whole number from 0 (off) to 999999, got "abc"'],
    [{ maxHeight: -1 }, 'maxHeight must be a whole number from 0 (off) to 999999, got -1'],
    [{ minSize: 1.5 }, 'minSize must be a whole number >= 0, got 1.5'],
    [{ concurrency: 0 }, 'concurrency must be a whole number >= 1, got 0'],
    [{ rateLimit: Number.NaN }, 'rateLimit must be a whole number >= 1, got NaN'],
    [{ compression: 'lossy' as never }, 'compression must be "intelligent", "ultra" or "lossless", got "lossy"'],
    [{ webp: 'yes' as never }, 'webp must be true or false, got "yes"'],
    [{ failOnError: 1 as never }, 'failOnError must be true or false, got 1'],
    [{ include: [1] as never }, 'include must be a glob string or an array of glob strings, got [1]'],
    [{ exclude: '' }, 'exclude must be a glob string or an array of glob strings, got ""'],
    [{ minSavings: '120%' }, 'minSavings must be a whole number of bytes >= 0 or a percentage string such as "5%" (0-99%), got "120%"'],
    [{ minSavings: -3 }, 'minSavings must be a whole number of bytes >= 0 or a percentage string such as "5%" (0-99%), got -3'],
    [{ cache: 42 as never }, 'cache must be a directory path or false, got 42'],
    [{ cacheMaxAge: 0 }, 'cacheMaxAge must be a number of days > 0 or false, got 0'],
    [{ report: true as never }, 'report must be a file path or false, got true'],
    [{ logLevel: 'debug' as never }, 'logLevel must be "silent", "error", "warn" or "info", got "debug"'],
    [{ apiKey: KEY, endpoint: 'ftp://example.com' }, 'endpoint must be an http(s) URL such as "https://api.megaoptim.com/v1", got "ftp://example.com"'],
    [{ apiKey: KEY, endpoint: 'not a url' }, 'endpoint must be an http(s) URL such as "https://api.megaoptim.com/v1", got "not a url"'],
    [{ apiKey: KEY, endpoint: 'https://x.test/v1?token=secret' }, 'endpoint must be a URL without a query or fragment, got "https://x.test/v1?…"'],
  ])('rejects %j with an exact message', (options, message) => {
    expect(() => resolveOptions(options)).toThrow(OptionsError)
    expect(() => resolveOptions(options)).toThrow(`[megaoptim] ${message}`)
  })

  it('names unknown options', () => {
    expect(() => resolveOptions({ maxwidth: 3 } as never)).toThrow(/unknown option "maxwidth"; known options: apiKey, endpoint/)
  })

  it('needs a key for a custom endpoint and says how to get one or drop it', () => {
    expect(() => resolveOptions({ endpoint: 'http://127.0.0.1:9000/v1' }, { env: {} })).toThrow(
      '[megaoptim] endpoint "http://127.0.0.1:9000/v1" needs an API key: set apiKey or MEGAOPTIM_API_KEY, or remove endpoint to optimize with the embedded engine',
    )
  })

  it('picks the backend from apiKey, MEGAOPTIM_API_KEY and endpoint', () => {
    expect(resolveOptions({}, { env: { MEGAOPTIM_API_KEY: KEY } }).backend).toMatchObject({ kind: 'remote', endpoint: DEFAULT_ENDPOINT, hosted: true })
    const selfHosted = resolveOptions({ apiKey: KEY, endpoint: 'http://127.0.0.1:9000/v1/' }).backend
    expect(selfHosted).toMatchObject({ kind: 'remote', endpoint: 'http://127.0.0.1:9000/v1', hosted: false })
    expect(resolveOptions({}, { env: { MEGAOPTIM_API_KEY: '  ' } }).backend).toEqual({ kind: 'embedded' })
  })

  it('never shows the key: not in errors, JSON or inspect', () => {
    const resolved = resolveOptions({ apiKey: KEY })
    expect(JSON.stringify(resolved)).not.toContain(KEY)
    expect(inspect(resolved, { depth: 10 })).not.toContain(KEY)
    expect(String(resolved.backend.kind === 'remote' && resolved.backend.apiKey)).toBe('[redacted]')
    expect(resolved.backend.kind === 'remote' && resolved.backend.apiKey.reveal()).toBe(KEY)
    try {
      resolveOptions({ apiKey: KEY, endpoint: `https://user:${KEY}@example.com/v1` })
      expect.unreachable()
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(KEY)
    }
  })

  it('parses minSavings in bytes or percent', () => {
    expect(resolveOptions({ minSavings: 2048 }).minSavings).toEqual({ unit: 'bytes', value: 2048 })
    expect(resolveOptions({ minSavings: '5%' }).minSavings).toEqual({ unit: 'percent', value: 5 })
    expect(resolveOptions({ minSavings: '2.5 %' }).minSavings).toEqual({ unit: 'percent', value: 2.5 })
  })

  it('resolves cache and report against cwd, and takes cache: false', () => {
    const r = resolveOptions({ cache: '.cache/img', report: 'out/report.json', cacheMaxAge: 7 }, { cwd: '/p' })
    expect(r.cache).toBe(path.resolve('/p/.cache/img'))
    expect(r.report).toBe(path.resolve('/p/out/report.json'))
    expect(r.cacheMaxAge).toBe(7 * 24 * 60 * 60 * 1000)
    expect(resolveOptions({ cache: false, cacheMaxAge: false }).cache).toBe(false)
  })

  it('is pure: the input is not mutated and arrays are copied', () => {
    const include = ['**/*.png']
    const input: Options = Object.freeze({ include, exclude: 'x/**', webp: true }) as Options
    const before = JSON.stringify(input)
    const r = resolveOptions(input)
    expect(JSON.stringify(input)).toBe(before)
    expect(r.include).not.toBe(include)
    r.include.push('**/*.jpg')
    expect(include).toEqual(['**/*.png'])
    expect(resolveOptions(input)).toEqual(resolveOptions(input))
  })
})
