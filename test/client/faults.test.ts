/**
 * The client against a server that misbehaves: retries, Retry-After, long-poll `processing`, failed jobs,
 * timeouts, and downloads that fail verification.
 */
import { describe, expect, test } from 'vitest'
import type { OptimizeOutcome } from '../../src/client.ts'
import { distinctPngs } from './_fixtures.ts'
import { useFakeApi } from './_setup.ts'

const setup = useFakeApi({ maxInFlightJobs: 1 })

const statuses = (outcomes: OptimizeOutcome[]) => outcomes.map((o) => o.status)
const errorOf = (o: OptimizeOutcome | undefined) => (o?.status === 'failed' ? o.error : undefined)

describe('retries', () => {
  test.each([
    ['a 500 once', { kind: 'code', code: 500 }],
    ['a connection reset', { kind: 'reset' }],
    ['truncated JSON', { kind: 'truncated' }],
  ] as const)('%s on /optimize is retried and nothing is lost', async (_, fault) => {
    const { api, client, events } = await setup()
    api.inject('optimize', fault)
    const outcomes = await client.optimize(distinctPngs(3))
    expect(statuses(outcomes)).toEqual(['optimized', 'optimized', 'optimized'])
    expect(api.of('optimize')).toHaveLength(2)
    expect(client.stats.retries).toBe(1)
    const retried = events.find((e) => e.type === 'retried')
    expect(retried).toMatchObject({ type: 'retried', endpoint: '/optimize', attempt: 1 })
  })

  test.each([
    ['a 500', { kind: 'code', code: 500 }],
    ['a reset', { kind: 'reset' }],
    ['truncated JSON', { kind: 'truncated' }],
  ] as const)('%s on /result is retried', async (_, fault) => {
    const { api, client } = await setup()
    api.inject('result', fault)
    expect(statuses(await client.optimize(distinctPngs(2)))).toEqual(['optimized', 'optimized'])
    expect(api.of('result')).toHaveLength(2)
    expect(api.of('optimize')).toHaveLength(1)
  })

  test('attempts are bounded: a server that keeps failing yields failed items after maxAttempts requests', async () => {
    const { api, client } = await setup({}, { maxAttempts: 3 })
    api.inject('optimize', { kind: 'code', code: 500, message: 'database down' }, { times: 100 })
    const outcomes = await client.optimize(distinctPngs(2))
    expect(api.of('optimize')).toHaveLength(3)
    for (const o of outcomes) {
      expect(errorOf(o)?.code).toBe('MEGAOPTIM_SERVER')
      expect(errorOf(o)?.apiCode).toBe(500)
      expect(errorOf(o)?.message).toContain(o.name)
      expect(errorOf(o)?.message).toContain('database down')
      expect(errorOf(o)?.endpoint).toBe('/optimize')
    }
  })

  test('a 400 on a batch is asked again image by image, so only the refused image fails', async () => {
    const { api, client } = await setup()
    // The second image is the one the API refuses, in its batch and alone.
    api.inject('optimize', { kind: 'code', code: 400, message: 'The file is too large.' }, { times: 1 })
    api.inject('optimize', { kind: 'code', code: 400, message: 'The file is too large.' }, { after: 2, times: 1 })
    const outcomes = await client.optimize(distinctPngs(3))
    // One batch of 3, then each image alone.
    expect(api.of('optimize')).toHaveLength(4)
    expect(statuses(outcomes).filter((s) => s === 'failed')).toHaveLength(1)
    expect(statuses(outcomes).filter((s) => s === 'optimized')).toHaveLength(2)
  })

  test('a 400 on a single image is not retried and fails only that image', async () => {
    const { api, client } = await setup({}, { maxBatchSize: 1 })
    api.inject('optimize', { kind: 'code', code: 400, message: 'The compression field is invalid.' })
    const outcomes = await client.optimize(distinctPngs(3))
    expect(api.of('optimize')).toHaveLength(3)
    expect(statuses(outcomes).filter((s) => s === 'failed')).toHaveLength(1)
    expect(outcomes.map((o) => errorOf(o)?.code).filter(Boolean)).toEqual(['MEGAOPTIM_VALIDATION'])
  })

  test('a request that hangs times out and is retried', async () => {
    const { api, client } = await setup({}, { requestTimeout: 200 })
    api.inject('optimize', { kind: 'hang' })
    expect(statuses(await client.optimize(distinctPngs(1)))).toEqual(['optimized'])
    expect(api.of('optimize')).toHaveLength(2)
  })

  test('a request that always hangs fails with MEGAOPTIM_TIMEOUT after maxAttempts', async () => {
    const { api, client } = await setup({}, { requestTimeout: 100, maxAttempts: 2 })
    api.inject('optimize', { kind: 'hang' }, { times: 10 })
    const [o] = await client.optimize(distinctPngs(1))
    expect(errorOf(o)?.code).toBe('MEGAOPTIM_TIMEOUT')
    expect(api.of('optimize')).toHaveLength(2)
  })

  test('the total deadline ends the call with MEGAOPTIM_DEADLINE for what is left', async () => {
    const { client } = await setup({ processingMs: 60_000 }, { deadline: 1500, pollTimeout: 1 })
    const outcomes = await client.optimize(distinctPngs(2))
    for (const o of outcomes) expect(errorOf(o)?.code).toBe('MEGAOPTIM_DEADLINE')
  })
})

describe('rate limited answers', () => {
  test.each([
    ['body code 429', { kind: 'code', code: 429, retryAfter: '1' }],
    ['HTTP 429', { kind: 'http429', retryAfter: '1' }],
  ] as const)('%s: Retry-After is honoured before the next request to that endpoint', async (_, fault) => {
    const { api, client } = await setup({}, { retryBaseDelay: 1 })
    api.inject('optimize', fault)
    const outcomes = await client.optimize(distinctPngs(2))
    expect(statuses(outcomes)).toEqual(['optimized', 'optimized'])
    const [limited, next] = api.of('optimize')
    expect(limited!.code).toBe(429)
    // The next request may not arrive before the second the server asked for.
    expect(next!.time - limited!.time).toBeGreaterThanOrEqual(1000)
    expect(client.stats.rateLimited).toBe(1)
  })

  test('Retry-After as an HTTP date is honoured too', async () => {
    const { api, client } = await setup()
    api.inject('result', { kind: 'code', code: 429, retryAfter: new Date(Date.now() + 2500).toUTCString() })
    await client.optimize(distinctPngs(1))
    const [limited, next] = api.of('result')
    // HTTP dates have whole-second precision: at least 1.5 s remain of the 2.5 s asked when it is sent.
    expect(next!.time - limited!.time).toBeGreaterThanOrEqual(1000)
  })
})

describe('long-poll', () => {
  test('processing answers are asked again until the result is ready; they are not retries', async () => {
    const { api, client } = await setup()
    api.inject('result', { kind: 'processing', polls: 4 })
    expect(statuses(await client.optimize(distinctPngs(2)))).toEqual(['optimized', 'optimized'])
    expect(api.of('result').map((r) => r.code)).toEqual([202, 202, 202, 202, 200])
    expect(client.stats.retries).toBe(0)
    expect(api.of('result')[0]!.path).toMatch(/^\/v1\/optimize\/[0-9a-f-]{36}\/result$/)
  })

  test('the wait is a real long-poll: one request while the job takes its time', async () => {
    const { api, client } = await setup({ processingMs: 300 })
    expect(statuses(await client.optimize(distinctPngs(1)))).toEqual(['optimized'])
    expect(api.of('result')).toHaveLength(1)
  })

  test('504 means the job failed: its items fail, others carry on', async () => {
    const { api, client } = await setup()
    api.inject('result', { kind: 'code', code: 504, message: 'Job timed out' })
    const outcomes = await client.optimize(distinctPngs(6))
    expect(statuses(outcomes)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed', 'optimized'])
    expect(errorOf(outcomes[0])).toMatchObject({ code: 'MEGAOPTIM_JOB_FAILED', apiCode: 504, file: 'img-0.png' })
    expect(api.of('result')).toHaveLength(2)
  })
})

describe('download verification', () => {
  test.each([
    ['a 404', { kind: 'download404' }, /HTTP 404/],
    ['the wrong size', { kind: 'downloadWrongSize' }, /bytes but the API said/],
    ['the wrong format', { kind: 'downloadWrongFormat' }, /not an image but a PNG was expected/],
  ] as const)('a download with %s is a failed item, not an optimized one', async (_, fault, message) => {
    const { api, client, events } = await setup()
    api.inject('download', fault)
    const outcomes = await client.optimize(distinctPngs(3))
    expect(statuses(outcomes).filter((s) => s === 'failed')).toHaveLength(1)
    expect(statuses(outcomes).filter((s) => s === 'optimized')).toHaveLength(2)
    const failed = outcomes.find((o) => o.status === 'failed')!
    expect(errorOf(failed)?.code).toBe('MEGAOPTIM_DOWNLOAD')
    expect(errorOf(failed)?.message).toContain(failed.name)
    expect(errorOf(failed)?.message).toMatch(message)
    expect(events.filter((e) => e.type === 'failed')).toHaveLength(1)
  })

  test('a WebP version that fails verification loses only itself: the paid-for image is kept', async () => {
    const { api, client } = await setup()
    // Downloads go main, webp, main, webp...: the second download is the first WebP.
    api.inject('download', { kind: 'downloadWrongSize' }, { after: 1 })
    const [outcome] = await client.optimize(distinctPngs(1), { webp: true })
    expect(outcome!.status).toBe('optimized')
    if (outcome!.status !== 'optimized') return
    expect(outcome!.webp).toBeNull()
    expect(outcome!.webpError?.message).toMatch(/WebP version could not be used/)
  })

  test('a download reset is retried', async () => {
    const { api, client } = await setup()
    api.inject('download', { kind: 'reset' })
    expect(statuses(await client.optimize(distinctPngs(2)))).toEqual(['optimized', 'optimized'])
    expect(api.of('download')).toHaveLength(3)
  })
})
