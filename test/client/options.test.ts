/** Option and param validation: exact messages, defaults, no mutation. */
import { describe, expect, test } from 'vitest'
import { MegaOptimClient, resolveClientOptions } from '../../src/client.ts'
import { resolveParams } from '../../src/client/params.ts'

const apiKey = 'OPTkey0123456789abcdefghijklmnop'

describe('resolveClientOptions', () => {
  test('defaults follow the hosted API', () => {
    const r = resolveClientOptions({ apiKey })
    expect(r).toMatchObject({
      endpoint: 'https://api.megaoptim.com/v1',
      rateLimits: { optimize: { requests: 120, perMs: 60_000 }, result: { requests: 120, perMs: 60_000 }, info: { requests: 120, perMs: 60_000 } },
      maxInFlightJobs: 8,
      requestTimeout: 60_000,
      maxAttempts: 5,
      deadline: 600_000,
      pollTimeoutSeconds: 120,
      maxBatchSize: 5,
    })
  })

  test('rateLimit as a number, a window, or per endpoint; the input is not mutated', () => {
    expect(resolveClientOptions({ apiKey, rateLimit: 30 }).rateLimits.result).toEqual({ requests: 30, perMs: 60_000 })
    expect(resolveClientOptions({ apiKey, rateLimit: { requests: 10, perMs: 1000 } }).rateLimits.info).toEqual({ requests: 10, perMs: 1000 })
    const input = Object.freeze({ apiKey, rateLimit: Object.freeze({ optimize: 60, info: { requests: 5, perMs: 500 } }) })
    expect(resolveClientOptions(input).rateLimits).toEqual({
      optimize: { requests: 60, perMs: 60_000 },
      result: { requests: 120, perMs: 60_000 },
      info: { requests: 5, perMs: 500 },
    })
  })

  test('the key comes from MEGAOPTIM_API_KEY when not given, and endpoint slashes are trimmed', () => {
    const saved = process.env.MEGAOPTIM_API_KEY
    process.env.MEGAOPTIM_API_KEY = apiKey
    try {
      expect(resolveClientOptions({ endpoint: 'http://127.0.0.1:8080/v1/' })).toMatchObject({ apiKey, endpoint: 'http://127.0.0.1:8080/v1' })
    } finally {
      if (saved === undefined) delete process.env.MEGAOPTIM_API_KEY
      else process.env.MEGAOPTIM_API_KEY = saved
    }
  })

  test.each([
    [{ apiKey: '' }, 'apiKey is required: pass { apiKey } or set the MEGAOPTIM_API_KEY environment variable'],
    [{ apiKey, endpoint: 'api.megaoptim.com' }, 'endpoint must be an http(s) URL such as https://api.megaoptim.com/v1, got "api.megaoptim.com"'],
    [{ apiKey, endpoint: 'ftp://x/v1' }, 'endpoint must be an http(s) URL such as https://api.megaoptim.com/v1, got "ftp://x/v1"'],
    [{ apiKey, endpoint: 'https://user:pw@x/v1' }, 'endpoint must not contain credentials; pass the key as apiKey'],
    [{ apiKey, endpoint: 'https://x/v1?token=secret' }, 'endpoint must not have a query or fragment, got "https://x/v1?…"'],
    [{ apiKey, maxInFlightJobs: 0 }, 'maxInFlightJobs must be a whole number >= 1, got 0'],
    [{ apiKey, maxInFlightJobs: 'abc' }, 'maxInFlightJobs must be a whole number >= 1, got "abc"'],
    [{ apiKey, maxBatchSize: 6 }, 'maxBatchSize must be a whole number from 1 to 5, got 6'],
    [{ apiKey, pollTimeout: 301 }, 'pollTimeout must be a whole number from 1 to 300, got 301'],
    [{ apiKey, rateLimit: 1.5 }, 'rateLimit must be a whole number >= 1, got 1.5'],
    [{ apiKey, rateLimit: { requests: 10 } }, 'rateLimit.perMs must be a whole number >= 1, got nothing'],
    [{ apiKey, rateLimit: { upload: 5 } }, 'rateLimit has an unknown endpoint "upload"; use optimize, result or info'],
    [{ apiKey, rateLimit: { optimize: -1 } }, 'rateLimit.optimize must be a whole number >= 1, got -1'],
    [{ apiKey, onEvent: 'log' }, 'onEvent must be a function, got "log"'],
  ])('%j is refused: %s', (options, message) => {
    expect(() => new MegaOptimClient(options as never)).toThrow(new TypeError(message))
  })
})

describe('resolveParams', () => {
  test('defaults', () => {
    expect(resolveParams()).toEqual({ compression: 'intelligent', webp: false, keepExif: false, cmykToRgb: true, maxWidth: 0, maxHeight: 0 })
  })

  test.each([
    [{ compression: 'lossy' }, 'compression must be "intelligent", "ultra" or "lossless", got "lossy"'],
    [{ webp: 1 }, 'webp must be true or false, got 1'],
    [{ maxWidth: -1 }, 'maxWidth must be a whole number from 0 (off) to 999999, got -1'],
    [{ maxHeight: '800' }, 'maxHeight must be a whole number from 0 (off) to 999999, got "800"'],
    [{ callbackUrl: 'example.com/cb' }, 'callbackUrl must be an http(s) URL, got "example.com/cb"'],
  ])('%j is refused: %s', (params, message) => {
    expect(() => resolveParams(params as never)).toThrow(message)
    expect(() => resolveParams(params as never)).toThrow(expect.objectContaining({ code: 'MEGAOPTIM_INVALID_ARGUMENT' }))
  })

  test('optimize() rejects invalid params before sending anything', async () => {
    const client = new MegaOptimClient({ apiKey, endpoint: 'http://127.0.0.1:9/v1' })
    await expect(client.optimize([], { compression: 'max' as never })).rejects.toThrow('compression must be "intelligent", "ultra" or "lossless", got "max"')
    expect(client.stats.requests).toBe(0)
    await client.close()
  })
})
