/**
 * The client against a real loopback server that speaks the contract: outcomes, batching, dedupe,
 * name matching, verification of downloads, and no key on downloads.
 */
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import type { OptimizeInput } from '../../src/client.ts'
import { distinctPngs, fixture } from './_fixtures.ts'
import { useFakeApi } from './_setup.ts'

const setup = useFakeApi()

describe('optimize', () => {
  test('every input gets exactly one outcome, in input order, with the bytes the server produced', async () => {
    const { api, client, events } = await setup()
    const inputs = distinctPngs(23)
    const outcomes = await client.optimize(inputs)
    expect(outcomes).toHaveLength(23)
    outcomes.forEach((o, i) => {
      expect(o.input).toBe(inputs[i])
      expect(o.name).toBe(`img-${i}.png`)
      expect(o.status).toBe('optimized')
      if (o.status !== 'optimized') return
      // The fake returns the first 70% of the input: the client must hand back exactly that.
      const expected = inputs[i]!.data.slice(0, Math.floor(inputs[i]!.data.length * 0.7))
      expect(Buffer.from(o.data).equals(Buffer.from(expected))).toBe(true)
      expect(o.originalSize).toBe(inputs[i]!.data.length)
      expect(o.optimizedSize).toBe(expected.length)
      expect(o.webp).toBeNull()
    })
    expect(events.filter((e) => e.type === 'done').map((e) => (e as { name: string }).name).sort()).toEqual(inputs.map((i) => i.name).sort())
    expect(events[0]).toEqual({ type: 'queued', names: inputs.map((i) => i.name) })
    expect(api.of('optimize')).toHaveLength(5)
    expect(client.stats).toMatchObject({ requests: 10, byEndpoint: { optimize: 5, result: 5, info: 0 }, downloads: 23, retries: 0, rateLimited: 0 })
  })

  test('never more than 5 images in one request, whatever the count; type and numbering follow the contract', async () => {
    const { api, client } = await setup()
    for (const n of [1, 4, 5, 6, 11]) await client.optimize(distinctPngs(n, 'green_palette.png').map((x) => ({ ...x, name: `${n}-${x.name}` })))
    const optimize = api.of('optimize')
    expect(Math.max(...optimize.map((r) => r.files))).toBeLessThanOrEqual(5)
    expect(optimize.reduce((s, r) => s + r.files, 0)).toBe(1 + 4 + 5 + 6 + 11)
    const single = optimize.find((r) => r.files === 1 && r.fileNames[0] === '1-img-0.png')!
    expect(single.fields.type).toBe('file')
    const five = optimize.find((r) => r.files === 5)!
    expect(five.fields.type).toBe('files')
    expect(five.fields).toMatchObject({ compression: 'intelligent', webp: '0', cmyktorgb: '1', keep_exif: '0', max_width: '0', max_height: '0' })
  })

  test('params become the contract form fields', async () => {
    const { api, client } = await setup()
    await client.optimize(distinctPngs(2), { compression: 'ultra', webp: true, keepExif: true, cmykToRgb: false, maxWidth: 800, maxHeight: 600 })
    expect(api.of('optimize')[0]!.fields).toMatchObject({ type: 'files', compression: 'ultra', webp: '1', keep_exif: '1', cmyktorgb: '0', max_width: '800', max_height: '600' })
  })

  test('callback_url and the Basic-auth fields for URL fetching are passed through', async () => {
    const { api, client } = await setup()
    const url = api.host('a.png', distinctPngs(1)[0]!.data)
    await client.optimize([{ url }], { callbackUrl: 'https://hooks.example.test/done', httpUser: 'me', httpPass: 's3cret' })
    expect(api.of('optimize')[0]!.fields).toMatchObject({ type: 'url', url, callback_url: 'https://hooks.example.test/done', http_user: 'me', http_pass: 's3cret' })
  })

  test('identical bytes are sent once and every duplicate gets the outcome', async () => {
    const { api, client } = await setup()
    const png = fixture('horse.png')
    const inputs: OptimizeInput[] = [
      { name: 'a.png', data: png },
      { name: 'b/a-copy.png', data: new Uint8Array(png) },
      ...distinctPngs(2),
      { name: 'c.png', data: png },
    ]
    const outcomes = await client.optimize(inputs)
    expect(outcomes.map((o) => o.status)).toEqual(['optimized', 'optimized', 'optimized', 'optimized', 'optimized'])
    expect(outcomes.map((o) => o.name)).toEqual(['a.png', 'b/a-copy.png', 'img-0.png', 'img-1.png', 'c.png'])
    expect(api.of('optimize').reduce((s, r) => s + r.files, 0)).toBe(3)
    expect(api.of('download')).toHaveLength(3)
  })

  test('files on disk are read and named by their basename; a missing file fails alone', async () => {
    const { client } = await setup()
    const dir = mkdtempSync(join(tmpdir(), 'megaoptim-client-'))
    writeFileSync(join(dir, 'horse.png'), fixture('horse.png'))
    const outcomes = await client.optimize([{ path: join(dir, 'horse.png') }, { path: join(dir, 'missing.png') }, { path: join(dir, 'horse.png'), name: 'renamed.png' }])
    expect(outcomes.map((o) => [o.name, o.status])).toEqual([
      ['horse.png', 'optimized'],
      ['missing.png', 'failed'],
      ['renamed.png', 'optimized'],
    ])
    const missing = outcomes[1]!
    if (missing.status === 'failed') {
      expect(missing.error.code).toBe('MEGAOPTIM_UNSUPPORTED_INPUT')
      expect(missing.error.message).toContain('missing.png')
    }
  })

  test('results are matched by URL-decoded file_name even when the server encodes and reorders them', async () => {
    const { client } = await setup({ encodeNames: true, reverseResults: true })
    const names = ['my photo.png', 'été 1.png', 'plus+sign.png', '100%.png', 'plain.png']
    const inputs = distinctPngs(5).map((x, i) => ({ name: names[i]!, data: x.data }))
    const outcomes = await client.optimize(inputs)
    outcomes.forEach((o, i) => {
      expect(o.status).toBe('optimized')
      if (o.status === 'optimized') expect(Buffer.from(o.data).equals(Buffer.from(inputs[i]!.data.slice(0, Math.floor(inputs[i]!.data.length * 0.7))))).toBe(true)
    })
  })

  test('two inputs with the same name but different bytes never share a request, so results cannot be swapped', async () => {
    const { api, client } = await setup({ reverseResults: true })
    const [a, b] = distinctPngs(2)
    const outcomes = await client.optimize([{ name: 'same.png', data: a!.data }, { name: 'x/same.png', data: b!.data }])
    expect(api.of('optimize').map((r) => r.files)).toEqual([1, 1])
    expect(outcomes.map((o) => (o.status === 'optimized' ? o.originalSize : -1))).toEqual([a!.data.length, b!.data.length])
  })

  test('WebP versions are downloaded, verified and returned; JPEG and GIF keep their format', async () => {
    const { client } = await setup()
    const inputs = [
      { name: 'rocket.jpg', data: fixture('rocket.jpg') },
      { name: 'anim.gif', data: fixture('no_time_for_that_tiny.gif') },
      { name: 'horse.png', data: fixture('horse.png') },
    ]
    const outcomes = await client.optimize(inputs, { webp: true })
    for (const o of outcomes) {
      expect(o.status).toBe('optimized')
      if (o.status !== 'optimized') continue
      expect(o.webp).not.toBeNull()
      expect(Buffer.from(o.webp!.subarray(8, 12)).toString('latin1')).toBe('WEBP')
    }
  })

  test('success: 0 is no-gain, with the server\'s reason when it gives one; others in the request are fine', async () => {
    const { client } = await setup({ noGain: (name) => name === 'img-1.png', itemError: (name) => (name === 'truncated.jpg' ? 'VipsJpeg: premature end of JPEG image' : undefined) })
    const inputs = [...distinctPngs(3), { name: 'truncated.jpg', data: fixture('truncated.jpg') }]
    const outcomes = await client.optimize(inputs)
    expect(outcomes.map((o) => o.status)).toEqual(['optimized', 'no-gain', 'optimized', 'no-gain'])
    expect(outcomes[1]).toMatchObject({ status: 'no-gain', originalSize: inputs[1]!.data.length })
    expect(outcomes[1]).not.toHaveProperty('reason')
    expect(outcomes[3]).toMatchObject({ status: 'no-gain', originalSize: 400, reason: 'VipsJpeg: premature end of JPEG image' })
  })

  test('inputs that are not images fail before any request, with the file named', async () => {
    const { api, client } = await setup()
    const outcomes = await client.optimize([
      { name: 'notes.txt', data: new TextEncoder().encode('hello') },
      { name: 'empty.png', data: new Uint8Array() },
      { url: 'ftp://example.test/a.png' },
    ])
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'failed', 'failed'])
    for (const o of outcomes) if (o.status === 'failed') expect(o.error.code).toBe('MEGAOPTIM_UNSUPPORTED_INPUT')
    expect(api.requests).toHaveLength(0)
  })

  test('URL inputs go as type=url/urls and are matched by their decoded basename', async () => {
    const { api, client } = await setup({ encodeNames: true })
    const urls = ['sky line.png', 'b.png', 'c.gif'].map((n, i) => api.host(n, n.endsWith('gif') ? fixture('no_time_for_that_tiny.gif') : distinctPngs(3)[i]!.data))
    const outcomes = await client.optimize(urls.map((url) => ({ url })))
    expect(outcomes.map((o) => [o.name, o.status])).toEqual([
      ['sky line.png', 'optimized'],
      ['b.png', 'optimized'],
      ['c.gif', 'optimized'],
    ])
    expect(api.of('optimize')[0]!.fields).toMatchObject({ type: 'urls', url1: urls[0], url2: urls[1], url3: urls[2] })
    const one = await client.optimize([{ url: urls[0]! }])
    expect(one[0]!.status).toBe('optimized')
    expect(api.of('optimize')[1]!.fields).toMatchObject({ type: 'url', url: urls[0] })
  })

  test('downloads never carry the API key; API calls always do', async () => {
    const { api, client } = await setup()
    await client.optimize(distinctPngs(3), { webp: true })
    expect(api.of('download')).toHaveLength(6)
    expect(api.of('download').every((r) => !r.hasApiKey)).toBe(true)
    expect([...api.of('optimize'), ...api.of('result')].every((r) => r.hasApiKey)).toBe(true)
  })

  test('userInfo returns the account and records the balance', async () => {
    const { client } = await setup({ tokens: 42 })
    expect(await client.userInfo()).toEqual({ name: 'Fake User', email: 'fake@example.test', tokens: 42 })
    expect(client.stats.tokensLeft).toBe(42)
    await client.optimize(distinctPngs(3))
    expect(client.stats.tokensLeft).toBe(39)
  })

  test('an aborted call rejects with the abort reason and sends nothing more', async () => {
    const { api, client } = await setup({ processingMs: 60_000 })
    const controller = new AbortController()
    const pending = client.optimize(distinctPngs(3), {}, { signal: controller.signal })
    while (api.of('result').length === 0) await new Promise((r) => setTimeout(r, 5))
    controller.abort(new Error('build cancelled'))
    await expect(pending).rejects.toThrow('build cancelled')
    const count = api.requests.length
    await new Promise((r) => setTimeout(r, 50))
    expect(api.requests.length).toBe(count)
  })

  test('close() during a call rejects it instead of leaving it hanging', async () => {
    const { api, client } = await setup({ processingMs: 60_000 })
    const pending = client.optimize(distinctPngs(12))
    while (api.of('result').length === 0) await new Promise((r) => setTimeout(r, 5))
    const settled = expect(pending).rejects.toThrow('the MegaOptim client was closed')
    await client.close()
    await settled
  })

  test('events: queued once, sent per request, one done per input, failed for each failure', async () => {
    const { api, client, events } = await setup()
    api.inject('download', { kind: 'download404' })
    const inputs = [...distinctPngs(6), { name: 'bad.txt', data: new TextEncoder().encode('text') }]
    const outcomes = await client.optimize(inputs)
    expect(events.filter((e) => e.type === 'queued')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'sent').map((e) => (e as { endpoint: string }).endpoint).filter((p) => p === '/optimize')).toHaveLength(2)
    const done = events.filter((e) => e.type === 'done') as Array<{ name: string; outcome: string }>
    expect(done.map((d) => d.name).sort()).toEqual(inputs.map((i) => i.name).sort())
    expect(done.map((d) => `${d.name}:${d.outcome}`).sort()).toEqual(outcomes.map((o) => `${o.name}:${o.status}`).sort())
    const failed = events.filter((e) => e.type === 'failed') as Array<{ name: string }>
    expect(failed.map((f) => f.name).sort()).toEqual(outcomes.filter((o) => o.status === 'failed').map((o) => o.name).sort())
    expect(failed).toHaveLength(2)
  })

  test('a throwing event listener loses nothing', async () => {
    const { client } = await setup({}, { onEvent: () => { throw new Error('listener bug') } })
    expect((await client.optimize(distinctPngs(3))).map((o) => o.status)).toEqual(['optimized', 'optimized', 'optimized'])
  })
})
