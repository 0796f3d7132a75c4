/**
 * A deadline bounds everything a call (or several calls sharing one) may wait on an API that accepts
 * connections and never answers: requests in flight are cut at the deadline, not at their own timeout,
 * and messages give real numbers, never option names.
 */
import { describe, expect, test } from 'vitest'
import type { OptimizeOutcome } from '../../src/client.ts'
import { distinctPngs } from './_fixtures.ts'
import { useFakeApi } from './_setup.ts'

const setup = useFakeApi({ maxInFlightJobs: 2 })
const errorOf = (o: OptimizeOutcome | undefined) => (o?.status === 'failed' ? o.error : undefined)

describe('an API that never answers', () => {
  // Bounded: requestTimeout stays at 60 s, so only the deadline can end the call inside this test's 20 s.
  test('a request in flight is cut at the deadline, not after its own one-minute timeout', { timeout: 20_000 }, async () => {
    // requestTimeout stays at its default of 60 s: only the deadline can end this call within the test's 5 s.
    const { api, client } = await setup()
    api.inject('optimize', { kind: 'hang' }, { times: 100 })
    const startedAt = Date.now()
    const outcomes = await client.optimize(distinctPngs(3), {}, { deadline: { startedAt, endsAt: startedAt + 1000 } })
    for (const o of outcomes) {
      expect(errorOf(o)?.code).toBe('MEGAOPTIM_DEADLINE')
      expect(errorOf(o)?.message).toMatch(/no answer from the API within \d+(\.\d)? s/)
    }
    // One batch of 3: one request, never retried past the deadline.
    expect(client.stats.requests).toBe(1)
  })

  test('two calls sharing one deadline: once it has passed, the second sends nothing', async () => {
    const { api, client } = await setup()
    api.inject('optimize', { kind: 'hang' }, { times: 100 })
    const startedAt = Date.now()
    const deadline = { startedAt, endsAt: startedAt + 300 }
    await client.optimize(distinctPngs(2), {}, { deadline })
    const sent = api.requests.length
    const second = await client.optimize(distinctPngs(2, 'green_palette.png'), {}, { deadline })
    expect(api.requests.length).toBe(sent)
    for (const o of second) expect(errorOf(o)?.code).toBe('MEGAOPTIM_DEADLINE')
  })

  test('the last error tells the real number of attempts and their span, never an option name', async () => {
    const { api, client } = await setup({}, { requestTimeout: 300, maxAttempts: 3, retryBaseDelay: 1 })
    api.inject('optimize', { kind: 'hang' }, { times: 10 })
    const [o] = await client.optimize(distinctPngs(1))
    const error = errorOf(o)!
    expect(error.code).toBe('MEGAOPTIM_TIMEOUT')
    expect(error.message).toMatch(/no complete answer within 0\.3 s/)
    expect(error.message).toMatch(/\(tried 3 times over \d+(\.\d)? s\)/)
    expect(error.message).not.toMatch(/maxAttempts|requestTimeout|deadline/)
    expect(client.stats.requests).toBe(3)
  })

  test('a 500 that persists: the count and span are real numbers', async () => {
    const { api, client } = await setup({}, { maxAttempts: 4, retryBaseDelay: 1 })
    api.inject('optimize', { kind: 'code', code: 500 }, { times: 10 })
    const [o] = await client.optimize(distinctPngs(1))
    expect(errorOf(o)?.message).toMatch(/\(tried 4 times over \d+(\.\d)? s\)$/)
    expect(errorOf(o)?.message).not.toMatch(/maxAttempts/)
  })
})
