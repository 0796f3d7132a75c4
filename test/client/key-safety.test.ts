/**
 * The API key never appears in an error's message, stack, cause, inspection or JSON, whatever went wrong,
 * nor in how the client itself prints.
 */
import { createServer } from 'node:net'
import { inspect } from 'node:util'
import { afterEach, expect, test } from 'vitest'
import { MegaOptimClient, type ClientOptions, type OptimizeOutcome } from '../../src/client.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { distinctPngs } from './_fixtures.ts'

const KEY = 'LEAKYkeyZZ9876543210qwertyuiopas'

let api: FakeApi | undefined
let client: MegaOptimClient | undefined
afterEach(async () => {
  await client?.close()
  await api?.close()
  client = api = undefined
})

function dump(value: unknown): string {
  const e = value as Error
  return [String(e?.message), String(e?.stack), inspect(value, { depth: 20, showHidden: true }), JSON.stringify(value, Object.getOwnPropertyNames(value ?? {}))].join('\n')
}

function expectNoKey(value: unknown): void {
  const text = dump(value)
  expect(text.length).toBeGreaterThan(20)
  expect(text).not.toContain(KEY)
  expect(text).not.toContain(KEY.slice(0, 16))
}

async function failureOf(options: ClientOptions, run: (c: MegaOptimClient) => Promise<unknown>): Promise<unknown> {
  client = new MegaOptimClient({ apiKey: KEY, retryBaseDelay: 1, maxAttempts: 2, ...options })
  try {
    const result = await run(client)
    const failed = (result as OptimizeOutcome[]).find((o) => o.status === 'failed')
    if (!failed || failed.status !== 'failed') throw new Error('expected a failed outcome')
    expectNoKey(JSON.stringify(result, (_k, v: unknown) => (v instanceof Uint8Array ? v.length : v)))
    return failed.error
  } catch (error) {
    return error
  }
}

test('an AuthError for a wrong key does not carry the key', async () => {
  api = await startFakeApi()
  const error = await failureOf({ endpoint: api.endpoint }, (c) => c.userInfo())
  expect(error).toMatchObject({ code: 'MEGAOPTIM_AUTH' })
  expectNoKey(error)
})

test('a server that echoes the key in its error message has it scrubbed', async () => {
  api = await startFakeApi({ apiKey: KEY })
  api.inject('optimize', { kind: 'code', code: 400, message: `Bad key ${KEY} for this request` })
  const error = await failureOf({ endpoint: api.endpoint }, (c) => c.optimize(distinctPngs(1)))
  expect(error).toMatchObject({ code: 'MEGAOPTIM_VALIDATION' })
  expect((error as Error).message).toContain('Bad key *** for this request')
  expectNoKey(error)
})

test('a body that is not JSON and quotes the key is scrubbed', async () => {
  api = await startFakeApi({ apiKey: KEY })
  api.inject('info', { kind: 'raw', body: `<h1>Denied ${KEY}</h1>` }, { times: 5 })
  const error = await failureOf({ endpoint: api.endpoint }, (c) => c.userInfo())
  expect(error).toMatchObject({ code: 'MEGAOPTIM_INVALID_RESPONSE' })
  expect((error as Error).message).toContain('<h1>Denied ***</h1>')
  expectNoKey(error)
})

test('truncated JSON does not carry the key', async () => {
  api = await startFakeApi({ apiKey: KEY })
  api.inject('info', { kind: 'truncated' }, { times: 5 })
  const error = await failureOf({ endpoint: api.endpoint }, (c) => c.userInfo())
  expect(error).toMatchObject({ code: 'MEGAOPTIM_INVALID_RESPONSE' })
  expectNoKey(error)
})

test('a refused connection (undici error as cause) does not carry the key or headers', async () => {
  // A port that was free a moment ago: nothing listens there.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const error = await failureOf({ endpoint: `http://127.0.0.1:${port}/v1` }, (c) => c.optimize(distinctPngs(1)))
  expect(error).toMatchObject({ code: 'MEGAOPTIM_NETWORK' })
  expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' })
  expectNoKey(error)
})

test('a timeout and a reset do not carry the key', async () => {
  api = await startFakeApi({ apiKey: KEY })
  api.inject('info', { kind: 'hang' }, { times: 2 })
  const timeout = await failureOf({ endpoint: api.endpoint, requestTimeout: 100 }, (c) => c.userInfo())
  expect(timeout).toMatchObject({ code: 'MEGAOPTIM_TIMEOUT' })
  expectNoKey(timeout)
  await client!.close()
  api.inject('result', { kind: 'reset' }, { times: 2 })
  const reset = await failureOf({ endpoint: api.endpoint }, (c) => c.optimize(distinctPngs(1)))
  expect(reset).toMatchObject({ code: 'MEGAOPTIM_NETWORK' })
  expectNoKey(reset)
})

test('the client and its options do not print the key', async () => {
  api = await startFakeApi({ apiKey: KEY })
  client = new MegaOptimClient({ apiKey: KEY, endpoint: api.endpoint })
  expect(inspect(client, { showHidden: true, depth: 10 })).not.toContain(KEY)
  expect(JSON.stringify(client)).not.toContain(KEY)
  expect(JSON.stringify(client.stats)).not.toContain(KEY)
})

test('a malformed key is refused without echoing it', () => {
  const bad = `${KEY}\n`
  expect(() => new MegaOptimClient({ apiKey: bad })).toThrow('apiKey must be printable ASCII without spaces (got 33 characters; check for a stray newline or quote)')
  try {
    new MegaOptimClient({ apiKey: `${KEY} x` })
  } catch (error) {
    expectNoKey(error)
  }
})
