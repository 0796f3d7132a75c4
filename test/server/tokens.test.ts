import { describe, expect, it, onTestFinished } from 'vitest'
import type { EngineLike } from '../../src/server/options.ts'
import { call, files, fixture, optimizeAndWait, startServer, tempDir, waitResult, type Started } from './helpers.ts'


async function start(...args: Parameters<typeof startServer>): Promise<Started> {
  const s = await startServer(...args)
  onTestFinished(() => s.close())
  return s
}

const balance = async (s: Started): Promise<number> =>
  (await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens as number

describe('tokens, exactly as the contract says', () => {
  it('one token per success:1 item; failures and non-images cost nothing; WebP is free', async () => {
    const s = await start({}, 10)
    const done = await optimizeAndWait(
      s,
      files(
        {
          file1: ['horse.png', fixture('horse.png')],
          file2: ['palette_color.png', fixture('palette_color.png')],
          file3: ['truncated.jpg', fixture('truncated.jpg')],
          file4: ['notes.png', Buffer.from('just some text, named like an image')],
          file5: ['empty.png', Buffer.alloc(0)],
        },
        { type: 'files', webp: '1' },
      ),
    )
    expect(done.json.result.map((i: { success: number }) => i.success)).toEqual([1, 1, 0, 0, 0])
    expect(done.json.user.tokens).toBe(8)
    expect(await balance(s)).toBe(8)
  })

  it('no charge at 5% savings or less (lossless on an already tight JPEG)', async () => {
    const s = await start({}, 2)
    const done = await optimizeAndWait(s, files({ file: ['rocket.jpg', fixture('rocket.jpg')] }, { type: 'file', compression: 'lossless' }))
    const [item] = done.json.result
    expect(item.success).toBe(0)
    expect(item.saved_percent).toBe(0)
    expect(item.url).toBeNull()
    expect(done.json.user.tokens).toBe(2)
  })

  it('the 5% boundary: exactly 5% is not an optimization, 5.004% is', async () => {
    // An engine that shrinks by an exact ratio pins the boundary independently of sharp.
    const shrinkTo = (ratio: number): EngineLike => ({
      version: 'fixed-ratio',
      sniffFormat: () => 'png',
      isEngineError: (_e: unknown): _e is Error => false,
      optimizeImage: async (input) => ({
        format: 'png',
        originalSize: input.length,
        data: input.subarray(0, Math.round(input.length * ratio)),
        width: 1,
        height: 1,
        webp: null,
      }),
    })
    const image = Buffer.alloc(100_000, 7)
    for (const [ratio, success, tokens] of [
      [0.95, 0, 3],
      // 5.004% saved: shown as 5% when rounded, yet more than 5%.
      [0.94996, 1, 2],
    ] as const) {
      const s = await start({ engine: shrinkTo(ratio) }, 3)
      const done = await optimizeAndWait(s, files({ file: ['x.png', image] }, { type: 'file' }))
      expect(done.json.result[0].success).toBe(success)
      expect(done.json.user.tokens).toBe(tokens)
    }
  })

  it('unlimited accounts (-1) stay at -1', async () => {
    const s = await start({}, -1)
    const done = await optimizeAndWait(s, files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }))
    expect(done.json.result[0].success).toBe(1)
    expect(done.json.user.tokens).toBe(-1)
  })

  for (const backend of ['memory', 'sqlite'] as const) {
    it(`${backend}: balance 7, 20 concurrent single-image submits: exactly 7 accepted, never below 0`, async () => {
      let dataDir: string | undefined
      if (backend === 'sqlite') {
        const tmp = await tempDir()
        onTestFinished(tmp.remove)
        dataDir = tmp.dir
      }
      const s = await start({ dataDir }, 7)
      const seen: number[] = []
      const submits = Array.from({ length: 20 }, () =>
        call(`${s.endpoint}/optimize`, {
          key: s.key,
          body: files({ file: ['palette_color.png', fixture('palette_color.png')] }, { type: 'file' }),
        }),
      )
      const watchers = Array.from({ length: 5 }, async () => seen.push(await balance(s)))
      const answers = await Promise.all(submits)
      await Promise.all(watchers)
      const codes = answers.map((a) => a.json.code as number)
      expect(codes.filter((c) => c === 202)).toHaveLength(7)
      expect(codes.filter((c) => c === 455)).toHaveLength(13)
      for (const b of seen) expect(b).toBeGreaterThanOrEqual(0)
      const results = await Promise.all(
        answers.filter((a) => a.json.code === 202).map((a) => waitResult(s.endpoint, a.json.process_id, s.key)),
      )
      for (const r of results) {
        expect(r.json.result[0].success).toBe(1)
        expect(r.json.user.tokens).toBeGreaterThanOrEqual(0)
      }
      expect(await balance(s)).toBe(0)
    })
  }

  it('multi-image requests reserve all their images at once: balance 7, 2 images each: 3 accepted', async () => {
    const s = await start({}, 7)
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        call(`${s.endpoint}/optimize`, {
          key: s.key,
          body: files(
            { file1: ['a.png', fixture('palette_color.png')], file2: ['b.png', fixture('palette_color.png')] },
            { type: 'files' },
          ),
        }),
      ),
    )
    expect(answers.filter((a) => a.json.code === 202)).toHaveLength(3)
    expect(answers.filter((a) => a.json.code === 455)).toHaveLength(7)
    await Promise.all(answers.filter((a) => a.json.code === 202).map((a) => waitResult(s.endpoint, a.json.process_id, s.key)))
    expect(await balance(s)).toBe(1)
  })

  it('unspent reservations come back when items end with success 0', async () => {
    const s = await start({ jobDelayMs: 300 }, 2)
    const submitted = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files({ file1: ['t.jpg', fixture('truncated.jpg')], file2: ['h.png', fixture('horse.png')] }, { type: 'files' }),
    })
    expect(submitted.json.code).toBe(202)
    // Both tokens are held while the job runs, so a second request cannot spend them.
    expect(await balance(s)).toBe(0)
    const refused = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files({ file: ['h.png', fixture('horse.png')] }, { type: 'file' }),
    })
    expect(refused.json.code).toBe(455)
    const done = await waitResult(s.endpoint, submitted.json.process_id, s.key)
    expect(done.json.result.map((i: { success: number }) => i.success)).toEqual([0, 1])
    expect(done.json.user.tokens).toBe(1)
  })
})
