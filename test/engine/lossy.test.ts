import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { optimizeImage } from '../../src/engine/index.ts'
import { fixture, params, rgba } from './_helpers.ts'

describe('intelligent and ultra levels', () => {
  it('make photos smaller in their own format, same size, and ultra is no larger than intelligent', async () => {
    // rocket.jpg is a 4:4:4 source whose colour edges need 4:4:4 (kept as is at intelligent): the
    // JPEG case is the same photo saved at 4:2:0, as most photos are.
    const rocket420 = await sharp(fixture('rocket.jpg')).jpeg({ quality: 98, chromaSubsampling: '4:2:0' }).toBuffer()
    for (const [name, input] of [['rocket.jpg', rocket420], ['chelsea.png', fixture('chelsea.png')]] as const) {
      const intelligent = await optimizeImage(input, params())
      const ultra = await optimizeImage(input, params({ compression: 'ultra' }))
      const meta = await sharp(input).metadata()
      expect(intelligent.data.length).toBeLessThan(input.length * 0.8)
      expect(ultra.data.length).toBeLessThanOrEqual(intelligent.data.length)
      expect((await sharp(intelligent.data).metadata()).format).toBe(meta.format)
      expect([intelligent.width, intelligent.height]).toEqual([meta.width, meta.height])
      expect(intelligent.format).toBe(name.endsWith('.jpg') ? 'jpeg' : 'png')
    }
  })

  it('stays close to the input: mean absolute error per channel is small', async () => {
    const input = fixture('rocket.jpg')
    const result = await optimizeImage(input, params())
    const [a, b] = await Promise.all([rgba(input), rgba(result.data)])
    let sum = 0
    for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!)
    expect(sum / a.data.length).toBeLessThan(3)
  })

  it('keeps every frame of an animated GIF', async () => {
    const input = fixture('no_time_for_that_tiny.gif')
    const before = await sharp(input, { animated: true }).metadata()
    expect(before.pages).toBe(24)
    for (const compression of ['intelligent', 'ultra', 'lossless'] as const) {
      const result = await optimizeImage(input, params({ compression, webp: true }))
      const after = await sharp(result.data, { animated: true }).metadata()
      expect(after.pages).toBe(24)
      expect(after.format).toBe('gif')
      if (result.webp) {
        const webp = await sharp(result.webp, { animated: true }).metadata()
        expect(webp.format).toBe('webp')
        expect(webp.pages).toBe(24)
      }
    }
  })

  it('keeps a PNG\'s alpha channel', async () => {
    const input = fixture('horse.png')
    const result = await optimizeImage(input, params())
    const meta = await sharp(result.data).metadata()
    expect(meta.hasAlpha).toBe(true)
    const alpha = (bytes: Uint8Array): Promise<Buffer> => sharp(bytes).ensureAlpha().extractChannel(3).raw().toBuffer()
    const [a, b] = await Promise.all([alpha(input), alpha(result.data)])
    let differ = 0
    for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 8) differ++
    expect(differ / a.length).toBeLessThan(0.01)
  })

  it('keeps a grey PNG grey (one channel) and makes it smaller', async () => {
    const input = fixture('page.png')
    const result = await optimizeImage(input, params())
    expect(result.data.length).toBeLessThan(input.length)
    const meta = await sharp(result.data).metadata()
    expect(meta.channels === 1 || meta.isPalette).toBe(true)
  })

  it('is never larger than the input, whatever the level', async () => {
    for (const name of ['palette_color.png', 'no_time_for_that_tiny.gif', 'horse.png']) {
      const input = fixture(name)
      for (const compression of ['intelligent', 'ultra'] as const) {
        const result = await optimizeImage(input, params({ compression }))
        expect(result.data.length, `${name} ${compression}`).toBeLessThanOrEqual(input.length)
      }
    }
  })

  it('returns WebP input as WebP', async () => {
    const input = await sharp(fixture('chelsea.png')).webp({ quality: 95 }).toBuffer()
    const result = await optimizeImage(input, params())
    expect(result.format).toBe('webp')
    expect((await sharp(result.data).metadata()).format).toBe('webp')
    expect(result.data.length).toBeLessThan(input.length)
  })
})
