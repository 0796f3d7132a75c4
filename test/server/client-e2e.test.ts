/**
 * The project's own client (src/client/) end to end against this server: real images, real downloads,
 * the client's verification, tokens and the breaker on 455.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import sharp from 'sharp'
import { createClient, type MegaOptimClient } from '../../src/client.ts'
import { call, fixture, localServer, startServer, type Started } from './helpers.ts'


async function setup(tokens: number, options: Parameters<typeof startServer>[0] = {}): Promise<{ s: Started; client: MegaOptimClient }> {
  const s = await startServer(options, tokens)
  onTestFinished(() => s.close())
  const client = createClient({ apiKey: s.key, endpoint: s.endpoint, pollTimeout: 30 })
  onTestFinished(() => client.close())
  return { s, client }
}

describe('the MegaOptim client against the compatible server', () => {
  it('optimizes files, bytes and URLs, verifies every download and spends one token per optimized image', async () => {
    const origin = await localServer((req, res) => (req.url === '/img/horse%201.png' ? res.end(fixture('horse.png')) : ((res.statusCode = 404), res.end())))
    onTestFinished(() => origin.close())
    const { s, client } = await setup(50, { allowPrivateUrls: true })
    const inputs = [
      { name: 'horse.png', data: fixture('horse.png') },
      { name: 'again/horse.png', data: fixture('horse.png') },
      { name: 'palette.png', data: fixture('palette_color.png') },
      // rocket.jpg is a 4:4:4 source that needs 4:4:4 at intelligent (kept as is since engine v6): the
      // same photo saved at 4:2:0, as most photos are, is the JPEG case here.
      { name: 'rocket.jpg', data: await sharp(fixture('rocket.jpg')).jpeg({ quality: 95, chromaSubsampling: '4:2:0' }).toBuffer() },
      { name: 'truncated.jpg', data: fixture('truncated.jpg') },
      { name: 'anim.gif', data: fixture('no_time_for_that_tiny.gif') },
      { url: `${origin.url}/img/horse%201.png` },
    ]
    const outcomes = await client.optimize(inputs, { webp: true })
    expect(outcomes.map((o) => o.status)).toEqual(['optimized', 'optimized', 'optimized', 'optimized', 'no-gain', 'no-gain', 'optimized'])
    for (const [i, o] of outcomes.entries()) {
      if (o.status !== 'optimized') continue
      const original = inputs[i]!
      const originalBytes: Buffer = 'data' in original && original.data ? original.data : fixture('horse.png')
      const before = await sharp(originalBytes).metadata()
      const after = await sharp(o.data).metadata()
      expect(after.format).toBe(before.format)
      expect([after.width, after.height]).toEqual([before.width, before.height])
      expect(o.optimizedSize).toBe(o.data.length)
      expect(o.data.length).toBeLessThan(originalBytes.length * 0.95)
      expect(o.webp).not.toBeNull()
      expect((await sharp(o.webp!).metadata()).format).toBe('webp')
    }
    // Identical bytes went once; the URL input was fetched by the server.
    expect(origin.hits).toBe(1)
    // Charged: horse (once, deduplicated), palette, rocket, the URL's horse; never the no-gain ones.
    expect((await client.userInfo()).tokens).toBe(46)
    expect(s.server.stats.requests['GET /image/:dir/:name']).toBe(8)
  })

  it('a 455 refuses the whole batch and opens the breaker: nothing is charged, nothing more is sent', async () => {
    const { s, client } = await setup(2)
    // Five distinct images (deduplication would fold identical ones): one request, more images than tokens.
    const inputs = Array.from({ length: 5 }, (_, i) => ({ name: `${i}.png`, data: Buffer.concat([fixture('horse.png'), Buffer.from([i])]) }))
    const outcomes = await client.optimize(inputs, {})
    expect(outcomes.map((o) => (o.status === 'failed' ? o.error.code : o.status))).toEqual(
      Array(5).fill('MEGAOPTIM_TOKENS_EXHAUSTED'),
    )
    const more = await client.optimize([{ name: 'x.png', data: fixture('palette_color.png') }], {})
    expect(more[0]!.status).toBe('failed')
    expect(s.server.stats.requests['POST /v1/optimize']).toBe(1)
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens).toBe(2)
  })
})
