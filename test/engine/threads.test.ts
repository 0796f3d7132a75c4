import { afterAll, describe, expect, it } from 'vitest'
import { optimizeImage } from '../../src/engine/index.ts'
import { createEngineThreads } from '../../src/engine/threads.ts'
import { failure, fixture, params } from './_helpers.ts'

const threads = createEngineThreads(2)
afterAll(() => threads.close())

describe('engine threads', () => {
  it('give the same bytes as the engine on the main thread, for every format', async () => {
    for (const name of ['rocket.jpg', 'horse.png', 'no_time_for_that_tiny.gif', 'palette_color.png']) {
      const input = fixture(name)
      const [here, there] = await Promise.all([optimizeImage(input, params({ webp: true })), threads.optimizeImage(input, params({ webp: true }))])
      expect(Buffer.from(there.data).equals(Buffer.from(here.data)), name).toBe(true)
      expect(there.webp && Buffer.from(there.webp).equals(Buffer.from(here.webp!)), name).toBe(here.webp ? true : null)
      expect({ ...there, data: null, webp: null }).toEqual({ ...here, data: null, webp: null })
    }
  })

  it('send only the image when it is a view into a larger buffer', async () => {
    const jpeg = fixture('rocket.jpg')
    const padded = Buffer.alloc(jpeg.length + 1000, 0xff)
    jpeg.copy(padded, 500)
    const out = await threads.optimizeImage(padded.subarray(500, 500 + jpeg.length), params())
    expect(out.originalSize).toBe(jpeg.length)
  })

  it('bring an engine error back with its code and message', async () => {
    const truncated = await failure(threads.optimizeImage(fixture('truncated.jpg'), params()))
    expect(truncated.code).toBe('ENGINE_CORRUPT_INPUT')
    expect(truncated.message).toMatch(/truncated or corrupt/)
    const big = await failure(threads.optimizeImage(fixture('no_time_for_that_tiny.gif'), params(), { limitInputPixels: 8399 }))
    expect(big.code).toBe('ENGINE_TOO_LARGE')
  })

  it('stop an image whose signal is aborted once it was handed to a thread', async () => {
    const controller = new AbortController()
    const run = threads.optimizeImage(fixture('chelsea.png'), params(), { signal: controller.signal })
    setImmediate(() => controller.abort())
    const err = await failure(run)
    expect(err.code).toBe('ENGINE_ABORTED')
    // The thread is free again and still works.
    const out = await threads.optimizeImage(fixture('horse.png'), params())
    expect(out.data.length).toBeLessThan(fixture('horse.png').length)
  })

  it('refuse work once closed', async () => {
    const pool = createEngineThreads(1)
    await pool.optimizeImage(fixture('rocket.jpg'), params())
    await pool.close()
    expect((await failure(pool.optimizeImage(fixture('rocket.jpg'), params()))).code).toBe('ENGINE_ABORTED')
  })
})
