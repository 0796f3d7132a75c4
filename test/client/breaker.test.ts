/**
 * The circuit breaker: after 455 no new job is sent; after 401/404 on the key nothing at all is sent.
 * Every input still gets exactly one outcome, with the reason.
 */
import { afterEach, expect, test } from 'vitest'
import { CircuitOpenError, MegaOptimClient, type ClientOptions } from '../../src/client.ts'
import { startFakeApi, type FakeApi, type FakeApiOptions } from '../helpers/fake-api.ts'
import { distinctPngs } from './_fixtures.ts'

let api: FakeApi | undefined
let client: MegaOptimClient | undefined
afterEach(async () => {
  await client?.close()
  await api?.close()
  client = api = undefined
})

async function setup(apiOptions: FakeApiOptions = {}, clientOptions: ClientOptions = {}) {
  api = await startFakeApi(apiOptions)
  client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { requests: 1000, perMs: 1000 }, retryBaseDelay: 5, ...clientOptions })
  return { api, client }
}

test('455 in the middle of a run: no /optimize after it, every remaining input failed with the reason', async () => {
  // 12 tokens: two jobs of 5 pass, the third (5 images) is refused.
  const { api, client } = await setup({ tokens: 12 }, { maxInFlightJobs: 1 })
  const outcomes = await client.optimize(distinctPngs(40))
  expect(outcomes).toHaveLength(40)
  const statuses = outcomes.map((o) => o.status)
  expect(statuses.slice(0, 10)).toEqual(Array(10).fill('optimized'))
  expect(statuses.slice(10)).toEqual(Array(30).fill('failed'))
  const refused = outcomes[10]!
  expect(refused.status === 'failed' && refused.error).toMatchObject({ code: 'MEGAOPTIM_TOKENS_EXHAUSTED', apiCode: 455, file: 'img-10.png' })
  const notSent = outcomes[20]!
  expect(notSent.status === 'failed' && notSent.error).toBeInstanceOf(CircuitOpenError)
  expect(notSent.status === 'failed' && notSent.error).toMatchObject({ code: 'MEGAOPTIM_CIRCUIT_OPEN', apiCode: 455, file: 'img-20.png' })
  expect(notSent.status === 'failed' && notSent.error.message).toMatch(/^img-20\.png was not sent: the account is out of tokens \(\/optimize answered 455\).*Buy tokens/)

  const optimize = api.of('optimize')
  expect(optimize.map((r) => r.code)).toEqual([202, 202, 455])
  const lastOptimize = optimize.at(-1)!.time
  expect(api.requests.filter((r) => r.time > lastOptimize && r.endpoint !== 'result' && r.endpoint !== 'download')).toEqual([])
  // userInfo is not sent either.
  await expect(client.userInfo()).rejects.toBeInstanceOf(CircuitOpenError)
  expect(api.of('info')).toHaveLength(0)
})

test('455 with jobs in flight: jobs the API already accepted are still collected', async () => {
  // Two jobs in flight: the first is accepted (7 → 2 tokens), the second gets 455 while the first is still
  // processing; the third waits for a job slot that frees only after the 455, so it is never sent.
  const { api, client } = await setup({ tokens: 7, processingMs: 150 }, { maxInFlightJobs: 2 })
  const outcomes = await client.optimize(distinctPngs(20))
  const optimized = outcomes.filter((o) => o.status === 'optimized')
  // Only one job of 5 fits in 7 tokens; it was accepted before the 455 and is paid for, so it is fetched.
  expect(optimized).toHaveLength(5)
  expect(outcomes.filter((o) => o.status === 'failed')).toHaveLength(15)
  expect(api.of('optimize').map((r) => r.code)).toEqual([202, 455])
  expect(api.of('result').map((r) => r.code)).toEqual([200])
})

test.each([404, 401])('a bad key (%i) stops all traffic at once', async (code) => {
  const { api, client } = await setup({}, { maxInFlightJobs: 2 })
  api.inject('optimize', { kind: 'code', code, message: 'Invalid API Key' }, { times: 2 })
  const outcomes = await client.optimize(distinctPngs(30))
  expect(outcomes.every((o) => o.status === 'failed')).toBe(true)
  const first = outcomes[0]!
  expect(first.status === 'failed' && first.error).toMatchObject({ code: 'MEGAOPTIM_AUTH', apiCode: code })
  expect(first.status === 'failed' && first.error.message).toMatch(/MEGAOPTIM_API_KEY/)
  // At most the jobs already in flight when the answer came; never a result poll or a retry.
  expect(api.of('optimize').length).toBeLessThanOrEqual(2)
  expect(api.of('result')).toHaveLength(0)
  const before = api.requests.length
  const again = await client.optimize(distinctPngs(3))
  expect(again.every((o) => o.status === 'failed' && o.error.code === 'MEGAOPTIM_CIRCUIT_OPEN')).toBe(true)
  await expect(client.userInfo()).rejects.toMatchObject({ code: 'MEGAOPTIM_CIRCUIT_OPEN' })
  expect(api.requests.length).toBe(before)
})

test('a wrong key is reported by userInfo as an AuthError, and the breaker opens', async () => {
  api = await startFakeApi()
  client = new MegaOptimClient({ apiKey: 'WRONGkey0123456789abcdefghijklmn', endpoint: api.endpoint })
  await expect(client.userInfo()).rejects.toMatchObject({ name: 'AuthError', code: 'MEGAOPTIM_AUTH', apiCode: 404, endpoint: '/users/info' })
  const outcomes = await client.optimize(distinctPngs(2))
  expect(outcomes.map((o) => o.status === 'failed' && o.error.code)).toEqual(['MEGAOPTIM_CIRCUIT_OPEN', 'MEGAOPTIM_CIRCUIT_OPEN'])
  expect(api.requests).toHaveLength(1)
})
