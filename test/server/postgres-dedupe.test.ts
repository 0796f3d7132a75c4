/** The team result cache: an account's same image with the same settings is encoded once, on any replica. */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { loadDefaultEngine } from '../../src/server/engine.ts'
import type { EngineLike, InternalServerOptions } from '../../src/server/options.ts'
import { createMegaOptimServer } from '../../src/server/server.ts'
import { compressiblePng } from '../helpers/images.ts'
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts'
import { call, files, waitResult } from './helpers.ts'

let pg: TestPostgres | undefined
beforeAll(async () => {
  if (!postgresMissing) pg = await startPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

/** The real engine, counting its encodes. */
async function countingEngine(): Promise<EngineLike & { calls: number }> {
  const real = await loadDefaultEngine()
  const counting = {
    calls: 0,
    version: real.version,
    sniffFormat: (b: Uint8Array) => real.sniffFormat(b),
    isEngineError: (e: unknown): e is Error => real.isEngineError(e),
    optimizeImage: (...args: Parameters<EngineLike['optimizeImage']>) => {
      counting.calls++
      return real.optimizeImage(...args)
    },
  }
  return counting
}

async function replica(options: InternalServerOptions): Promise<string> {
  const server = createMegaOptimServer({ workers: 1, ...options })
  onTestFinished(() => server.close())
  return `${await server.listen()}/v1`
}

async function optimize(endpoint: string, key: string, png: Buffer, fields: Record<string, string> = {}) {
  const submitted = await call(`${endpoint}/optimize`, { key, body: files({ file: ['same.png', png] }, { type: 'file', ...fields }) })
  expect(submitted.json.code, submitted.text).toBe(202)
  const done = await waitResult(endpoint, submitted.json.process_id, key)
  expect(done.json.code, done.text).toBe(200)
  return done.json
}

describe.skipIf(postgresMissing)('the team result cache (PostgreSQL)', () => {
  it('a dedupe hit makes no encode, on another replica, is charged as an optimized image, and is never shared across accounts', async () => {
    const database = await pg!.createDatabase()
    const engine = await countingEngine()
    const one = await replica({ database, engine })
    const two = await replica({ database, engine })
    const setup = createMegaOptimServer({ database })
    onTestFinished(() => setup.close())
    const team = await setup.createAccount({ name: 'Team', email: 'team@example.com', tokens: 10 })
    const other = await setup.createAccount({ name: 'Other', email: 'other@example.com', tokens: 10 })
    const png = await compressiblePng(42)

    const first = await optimize(one, team.apiKey, png)
    expect(engine.calls).toBe(1)
    // A CI runner with an empty cache asks again, through another replica: fetched, not encoded.
    const again = await optimize(two, team.apiKey, png)
    expect(engine.calls).toBe(1)
    expect(again.result[0]).toMatchObject({ success: 1, optimized_size: first.result[0].optimized_size })
    expect(again.result[0].url).not.toBe(first.result[0].url)
    const download = await fetch(again.result[0].url)
    expect(download.status).toBe(200)
    expect(Buffer.from(await download.arrayBuffer()).equals(Buffer.from(await (await fetch(first.result[0].url)).arrayBuffer()))).toBe(true)
    // Tokens as the contract says: one per optimized image, cached or not.
    expect(again.user.tokens).toBe(8)
    // Other settings are another result.
    await optimize(two, team.apiKey, png, { compression: 'lossless' })
    expect(engine.calls).toBe(2)
    // Another account never sees this one's results.
    await optimize(one, other.apiKey, png)
    expect(engine.calls).toBe(3)
  })

  it('--dedupe-days 0 turns the cache off', async () => {
    const database = await pg!.createDatabase()
    const engine = await countingEngine()
    const endpoint = await replica({ database, engine, dedupeDays: 0 })
    const setup = createMegaOptimServer({ database })
    onTestFinished(() => setup.close())
    const team = await setup.createAccount({ name: 'Team', email: 'team@example.com', tokens: -1 })
    const png = await compressiblePng(7)
    await optimize(endpoint, team.apiKey, png)
    await optimize(endpoint, team.apiKey, png)
    expect(engine.calls).toBe(2)
  })
})
