/**
 * The request rate stays at or under the configured limit in every window, as the server sees it
 * (arrival times, sliding window), on each endpoint separately.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { MegaOptimClient, type ClientEvent } from '../../src/client.ts'
import { Agent } from 'undici'
import { callApi, parseRateHeaders } from '../../src/client/http.ts'
import { EndpointLimiter, pacing } from '../../src/client/rate-limiter.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { distinctPngs } from './_fixtures.ts'

let api: FakeApi | undefined
let client: MegaOptimClient | undefined
afterEach(async () => {
  await client?.close()
  await api?.close()
  client = api = undefined
})

test('40 images at 6 requests per second: never more than 6 in any 1 s window, no 429, nothing lost', async () => {
  const limit = { requests: 6, perMs: 1000 }
  api = await startFakeApi({ rateLimit: limit })
  client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: limit, maxInFlightJobs: 8 })
  // Ask for 3 polls of `processing` per job so /result carries more traffic than /optimize.
  api.inject('result', { kind: 'processing', polls: 2 }, { times: 8 })
  const outcomes = await client.optimize(distinctPngs(40))
  expect(outcomes.every((o) => o.status === 'optimized')).toBe(true)
  expect(api.rateLimited).toBe(0)
  expect(client.stats.rateLimited).toBe(0)
  expect(api.of('optimize')).toHaveLength(8)
  expect(api.of('result').length).toBeGreaterThan(8)
  expect(api.maxInWindow('optimize', 1000)).toBeLessThanOrEqual(6)
  expect(api.maxInWindow('result', 1000)).toBeLessThanOrEqual(6)
})

test('two calls at once on one client share the limit: still never more than the limit in any window', async () => {
  const limit = { requests: 5, perMs: 1000 }
  api = await startFakeApi({ rateLimit: limit })
  client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: limit })
  const [a, b] = await Promise.all([client.optimize(distinctPngs(20, 'palette_color.png')), client.optimize(distinctPngs(20, 'green_palette.png'))])
  expect([...a!, ...b!].every((o) => o.status === 'optimized')).toBe(true)
  expect(api.rateLimited).toBe(0)
  expect(api.maxInWindow('optimize', 1000)).toBeLessThanOrEqual(5)
  expect(api.maxInWindow('result', 1000)).toBeLessThanOrEqual(5)
})

test('limits are per endpoint: a busy /optimize queue does not delay /users/info', async () => {
  api = await startFakeApi()
  client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { optimize: { requests: 2, perMs: 1000 }, info: { requests: 100, perMs: 1000 } } })
  const run = client.optimize(distinctPngs(25))
  // Five /optimize requests at 2/s take two seconds; the info call goes through at once meanwhile.
  const info = await client.userInfo()
  expect(info.tokens).toBe(-1)
  const infoAt = api.of('info')[0]!.time
  expect(api.of('optimize').filter((r) => r.time <= infoAt).length).toBeLessThan(5)
  await run
  expect(api.maxInWindow('optimize', 1000)).toBeLessThanOrEqual(2)
})

test('a client set above the server limit gets 429s, honours Retry-After and loses nothing', async () => {
  api = await startFakeApi({ rateLimit: { requests: 3, perMs: 1000, mode: 'http' } })
  client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { requests: 50, perMs: 1000 }, maxAttempts: 10, retryBaseDelay: 10 })
  const outcomes = await client.optimize(distinctPngs(25))
  expect(outcomes.every((o) => o.status === 'optimized')).toBe(true)
  expect(client.stats.rateLimited).toBeGreaterThan(0)
  expect(client.stats.rateLimited).toBe(api.rateLimited)
})

test('pacing: the window has a margin of max(1%, 200 ms) over the limit; a departure may be a quarter slot early', () => {
  expect(pacing({ requests: 120, perMs: 60_000 })).toEqual({ requests: 120, window: 60_600, spacing: 505, tolerance: 126.25 })
  expect(pacing({ requests: 6, perMs: 1000 })).toMatchObject({ requests: 6, window: 1200, spacing: 200, tolerance: 50 })
})

test('departures: never more than `requests` in any window, spread at the average spacing, nothing lost', async () => {
  const limiter = new EndpointLimiter({ requests: 5, perMs: 300 })
  const { requests, window, spacing, tolerance } = limiter.pacing
  const departures: number[] = []
  const depart = async (onWire: () => void) => {
    departures.push(performance.now())
    onWire()
  }
  await Promise.all(Array.from({ length: 17 }, () => limiter.schedule(depart)))
  expect(departures).toHaveLength(17)
  for (let i = 1; i < departures.length; i++) expect(departures[i]! - departures[i - 1]!).toBeGreaterThanOrEqual(spacing - tolerance)
  for (let i = requests; i < departures.length; i++) expect(departures[i]! - departures[i - requests]!).toBeGreaterThanOrEqual(window)
  const before = performance.now()
  limiter.pauseFor(300)
  await limiter.schedule(depart)
  expect(departures.at(-1)! - before).toBeGreaterThanOrEqual(299)
  limiter.close()
})

test('pacing starts from the moment a request reaches the socket, reported by undici before any answer', async () => {
  api = await startFakeApi()
  api.inject('info', { kind: 'hang' })
  const agent = new Agent()
  let wiredAt = 0
  const pending = callApi(
    { dispatcher: agent, base: api.endpoint, apiKey: api.apiKey },
    { kind: 'info', path: '/users/info', method: 'GET', timeoutMs: 30_000, onWire: () => (wiredAt ||= performance.now()) },
  )
  // The server never answers, yet the request was handed to the socket (and arrived).
  while (api.of('info').length === 0) await new Promise((r) => setTimeout(r, 5))
  expect(wiredAt).toBeGreaterThan(0)
  const settled = pending.catch(() => 'closed')
  await api.close()
  api = undefined
  await settled
  await agent.close()
})

test('a request that is slow to reach the socket pushes the next one back', async () => {
  const limiter = new EndpointLimiter({ requests: 10, perMs: 1000 })
  const wires: number[] = []
  const slowThenWire = (delay: number) => (onWire: () => void) =>
    new Promise<void>((resolve) =>
      setTimeout(() => {
        wires.push(performance.now())
        onWire()
        resolve()
      }, delay),
    )
  await Promise.all([limiter.schedule(slowThenWire(300)), limiter.schedule(slowThenWire(0)), limiter.schedule(slowThenWire(0))])
  // The least gap counts from when the slow request actually left, not from when it was started.
  expect(wires[1]! - wires[0]!).toBeGreaterThanOrEqual(limiter.pacing.spacing - limiter.pacing.tolerance)
  expect(wires[2]! - wires[1]!).toBeGreaterThanOrEqual(limiter.pacing.spacing - limiter.pacing.tolerance)
  limiter.close()
})

describe('the client learns the server limit', () => {
  test('with X-RateLimit-* headers: zero 429s against a server at 6/s while the client assumes 30/s', async () => {
    api = await startFakeApi({ rateLimit: { requests: 6, perMs: 1000, headers: 'laravel' } })
    const events: ClientEvent[] = []
    client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { requests: 30, perMs: 1000 }, onEvent: (e) => events.push(e) })
    const outcomes = await client.optimize(distinctPngs(50))
    expect(outcomes.every((o) => o.status === 'optimized')).toBe(true)
    expect(api.rateLimited).toBe(0)
    expect(api.maxInWindow('optimize', 1000)).toBeLessThanOrEqual(6)
    expect(events.filter((e) => e.type === 'rate-limit')).toContainEqual({ type: 'rate-limit', endpoint: '/optimize', requests: 6, perMs: 1000, source: 'headers' })
  })

  test.each(['none', 'retry-after'] as const)('without limit headers (%s): at most one 429 per endpoint, then it paces to what got through', async (headers) => {
    api = await startFakeApi({ rateLimit: { requests: 4, perMs: 2000, headers } })
    const events: ClientEvent[] = []
    client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { requests: 12, perMs: 2000 }, retryBaseDelay: 5, onEvent: (e) => events.push(e) })
    const outcomes = await client.optimize(distinctPngs(40))
    expect(outcomes.every((o) => o.status === 'optimized')).toBe(true)
    expect(api.of('optimize').filter((r) => r.code === 429).length).toBeLessThanOrEqual(1)
    expect(api.of('result').filter((r) => r.code === 429).length).toBeLessThanOrEqual(1)
    // (A machine too busy to reach 4 requests a second meets no 429 and learns nothing: also fine.)
    const learned = events.filter((e) => e.type === 'rate-limit')
    expect(learned.length).toBe(api.rateLimited > 0 ? learned.length || 1 : 0)
    // What got through before the refusal: the server's 4, or one less when one arrival sat on the window's edge.
    for (const e of learned) {
      expect(e).toMatchObject({ source: '429' })
      expect((e as { requests: number }).requests).toBeGreaterThanOrEqual(3)
      expect((e as { requests: number }).requests).toBeLessThanOrEqual(4)
    }
  })

  test('parses Laravel (Unix time) and fastify (seconds from now) resets, and ignores junk', () => {
    const now = 1_700_000_000_000
    expect(parseRateHeaders({ 'x-ratelimit-limit': '120', 'x-ratelimit-remaining': '0', 'retry-after': '7', 'x-ratelimit-reset': String(now / 1000 + 7) }, now)).toEqual({
      limit: 120,
      remaining: 0,
      retryAfterMs: 7000,
      resetMs: 7000,
    })
    expect(parseRateHeaders({ 'x-ratelimit-reset': '60' }, now)).toEqual({ resetMs: 60_000 })
    expect(parseRateHeaders({ 'x-ratelimit-limit': 'lots', 'x-ratelimit-remaining': '-1' }, now)).toEqual({})
  })
})
