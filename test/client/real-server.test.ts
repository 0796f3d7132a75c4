/**
 * The client against the project's own compatible server (src/server, sharp): the same HTTP path the
 * plugin uses with no API key. Proves the two halves agree on the contract, with real image bytes.
 */
import sharp from 'sharp'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { MegaOptimClient, sniffFormat } from '../../src/client.ts'
import { fixture } from './_fixtures.ts'

let server: { endpoint: string; apiKey: string; close(): Promise<void> }
let client: MegaOptimClient

beforeAll(async () => {
  const { startEmbeddedServer } = await import('../../src/server.ts')
  server = await startEmbeddedServer()
  client = new MegaOptimClient({ apiKey: server.apiKey, endpoint: server.endpoint, rateLimit: { requests: 1000, perMs: 1000 } })
})

afterAll(async () => {
  await client?.close()
  await server?.close()
})

test('real images come back smaller, in the same format, with verified WebP versions', async () => {
  const inputs = [
    { name: 'horse.png', data: fixture('horse.png') },
    // rocket.jpg is a 4:4:4 source that needs 4:4:4 at intelligent (kept as is since engine v6): the
      // same photo saved at 4:2:0, as most photos are, is the JPEG case here.
      { name: 'rocket.jpg', data: await sharp(fixture('rocket.jpg')).jpeg({ quality: 95, chromaSubsampling: '4:2:0' }).toBuffer() },
    { name: 'text.png', data: fixture('text.png') },
    { name: 'truncated.jpg', data: fixture('truncated.jpg') },
  ]
  const outcomes = await client.optimize(inputs, { webp: true })
  expect(outcomes.map((o) => o.status)).toEqual(['optimized', 'optimized', 'optimized', 'no-gain'])
  for (const [i, o] of outcomes.entries()) {
    if (o.status !== 'optimized') continue
    expect(o.data.length).toBeLessThan(inputs[i]!.data.length)
    expect(sniffFormat(o.data)).toBe(sniffFormat(inputs[i]!.data))
    expect(o.webp && sniffFormat(o.webp)).toBe('webp')
  }
  const broken = outcomes[3]!
  expect(broken.status === 'no-gain' && broken.reason).toMatch(/truncated|corrupt/i)
})

test('userInfo and the token balance', async () => {
  expect(await client.userInfo()).toMatchObject({ tokens: -1 })
  expect(client.stats.tokensLeft).toBe(-1)
})

test('a wrong key is refused by the real server and opens the breaker', async () => {
  const wrong = new MegaOptimClient({ apiKey: 'WRONGkey0123456789abcdefghijklmn', endpoint: server.endpoint })
  const [o] = await wrong.optimize([{ name: 'horse.png', data: fixture('horse.png') }])
  expect(o!.status === 'failed' && o!.error.code).toBe('MEGAOPTIM_AUTH')
  await expect(wrong.userInfo()).rejects.toMatchObject({ code: 'MEGAOPTIM_CIRCUIT_OPEN' })
  await wrong.close()
})
