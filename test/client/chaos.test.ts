/**
 * No image is lost: with faults of every kind sprinkled over every endpoint (seeded, so a failure can be
 * replayed), each input still gets exactly one outcome, optimized bytes are exactly what the server made,
 * and every failure carries a code and names its file.
 */
import { afterEach, expect, test } from 'vitest'
import { MegaOptimClient, type OptimizeInput } from '../../src/client.ts'
import { startFakeApi, type Endpoint, type FakeApi, type Fault } from '../helpers/fake-api.ts'
import { distinctPngs, fixture } from './_fixtures.ts'

let api: FakeApi | undefined
let client: MegaOptimClient | undefined
afterEach(async () => {
  await client?.close()
  await api?.close()
  client = api = undefined
})

/** mulberry32: a tiny seeded PRNG. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const FAULTS: Array<[Endpoint, Fault]> = [
  ['optimize', { kind: 'code', code: 500 }],
  ['optimize', { kind: 'reset' }],
  ['optimize', { kind: 'truncated' }],
  ['optimize', { kind: 'code', code: 429, retryAfter: '0.05' }],
  ['optimize', { kind: 'code', code: 400, message: 'refused' }],
  ['result', { kind: 'code', code: 500 }],
  ['result', { kind: 'reset' }],
  ['result', { kind: 'truncated' }],
  ['result', { kind: 'processing', polls: 2 }],
  ['result', { kind: 'code', code: 504 }],
  ['result', { kind: 'http429', retryAfter: '0.05' }],
  ['download', { kind: 'download404' }],
  ['download', { kind: 'downloadWrongSize' }],
  ['download', { kind: 'downloadWrongFormat' }],
  ['download', { kind: 'reset' }],
]

test.each([1, 2, 3])('seed %i: every input gets exactly one honest outcome', async (seed) => {
  const random = prng(seed)
  api = await startFakeApi({ noGain: (name) => name.endsWith('7.png') })
  for (let i = 0; i < 25; i++) {
    const [endpoint, fault] = FAULTS[Math.floor(random() * FAULTS.length)]!
    api.inject(endpoint, fault, { after: Math.floor(random() * 6) })
  }
  client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { requests: 2000, perMs: 1000 }, retryBaseDelay: 2, maxAttempts: 4, maxInFlightJobs: 3 })
  const pngs = distinctPngs(28)
  const inputs: OptimizeInput[] = [...pngs, { name: 'dup-of-0.png', data: pngs[0]!.data }, { name: 'rocket.jpg', data: fixture('rocket.jpg') }, { name: 'x.txt', data: new Uint8Array([1, 2, 3]) }]
  const outcomes = await client.optimize(inputs, { webp: random() < 0.5 })

  expect(outcomes).toHaveLength(inputs.length)
  outcomes.forEach((o, i) => {
    expect(o.input).toBe(inputs[i])
    if (o.status === 'optimized') {
      const data = (inputs[i] as { data: Uint8Array }).data
      expect(Buffer.from(o.data).equals(Buffer.from(data.slice(0, Math.floor(data.length * 0.7))))).toBe(true)
      expect(o.optimizedSize).toBe(o.data.length)
    } else if (o.status === 'failed') {
      expect(o.error.code).toMatch(/^MEGAOPTIM_/)
      expect(o.error.message).toContain(o.name.split('/').pop())
    } else {
      expect(o.name.endsWith('7.png')).toBe(true)
    }
  })
  expect(outcomes.at(-1)!.status).toBe('failed')
  expect(outcomes[28]!.status).toBe(outcomes[0]!.status)
  // The faults really bit: some requests were retried and some images failed.
  expect(client.stats.retries).toBeGreaterThan(0)
  expect(outcomes.filter((o) => o.status === 'failed').length).toBeGreaterThan(1)
  // Never more than 5 images in one request, whatever was retried.
  expect(Math.max(...api.of('optimize').map((r) => r.files))).toBeLessThanOrEqual(5)
})
