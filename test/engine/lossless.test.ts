import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { optimizeImage } from '../../src/engine/index.ts'
import { fixture, params, rgba } from './_helpers.ts'

const lossless = params({ compression: 'lossless' })

describe('lossless level', () => {
  for (const name of ['page.png', 'horse.png', 'palette_color.png', 'no_time_for_that_tiny.gif', 'rocket.jpg']) {
    it(`${name}: decoded pixels identical to the input's, never larger`, async () => {
      const input = fixture(name)
      const result = await optimizeImage(input, lossless)
      expect(result.data.length).toBeLessThanOrEqual(input.length)
      const [a, b] = await Promise.all([rgba(input), rgba(result.data)])
      expect(b.width).toBe(a.width)
      expect(b.height).toBe(a.height)
      expect(b.data.equals(a.data)).toBe(true)
    })
  }

  it('gains on a PNG with few colours (palette_color.png) and on one with alpha (horse.png)', async () => {
    for (const name of ['palette_color.png', 'horse.png']) {
      const input = fixture(name)
      const result = await optimizeImage(input, lossless)
      expect(result.data.length).toBeLessThan(input.length)
      expect(result.format).toBe('png')
    }
  })

  it('stores a grey image saved as RGB (a height map) as grey, with and without alpha, pixel for pixel', async () => {
    // A noisy ramp: more than 256 levels of detail in position, so no palette can take it.
    const width = 300
    const height = 200
    for (const alpha of [false, true]) {
      const channels = alpha ? 4 : 3
      const raw = Buffer.alloc(width * height * channels)
      for (let i = 0; i < width * height; i++) {
        const v = (i * 7 + ((i * 2654435761) >>> 27)) & 0xff
        raw.fill(v, i * channels, i * channels + 3)
        if (alpha) raw[i * channels + 3] = (i >> 3) & 0xff
      }
      const input = await sharp(raw, { raw: { width, height, channels } }).png({ compressionLevel: 0 }).toBuffer()
      const result = await optimizeImage(input, lossless)
      expect((await sharp(result.data).metadata()).channels).toBe(alpha ? 2 : 1)
      const [a, b] = await Promise.all([rgba(input), rgba(result.data)])
      expect(b.data.equals(a.data)).toBe(true)
      const rgbLossless = await sharp(input).png({ compressionLevel: 9, adaptiveFiltering: true, palette: false }).toBuffer()
      expect(result.data.length).toBeLessThan(rgbLossless.length)
    }
  })

  it('returns the input bytes themselves when nothing can be gained', async () => {
    // A PNG already written at maximum compression: re-encoding cannot beat it by construction.
    const input = await optimizeImage(fixture('page.png'), lossless).then((r) => Buffer.from(r.data))
    const again = await optimizeImage(input, lossless)
    expect(again.settings).toBe('input')
    expect(again.data).toBe(input)
    expect(Buffer.from(again.data).equals(input)).toBe(true)
  })

  it('strips a JPEG\'s EXIF without touching its scans, keeping the orientation', async () => {
    const base = fixture('rocket.jpg')
    const withExif = await sharp(base)
      .withExif({ IFD0: { Copyright: 'Someone 2026', ImageDescription: 'x'.repeat(2000) } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 90 })
      .toBuffer()
    const result = await optimizeImage(withExif, lossless)
    expect(result.data.length).toBeLessThan(withExif.length - 2000)
    const meta = await sharp(result.data).metadata()
    expect(meta.orientation).toBe(6)
    expect(Buffer.from(meta.exif ?? []).includes('Someone 2026')).toBe(false)
    // Displayed upright, pixel for pixel the same.
    const [a, b] = await Promise.all([rgba(withExif), rgba(result.data)])
    expect(b.width).toBe(427)
    expect(b.data.equals(a.data)).toBe(true)
  })

  it('keeps the JPEG as is when asked to keep EXIF (no lossless gain possible)', async () => {
    const input = fixture('rocket.jpg')
    const result = await optimizeImage(input, params({ compression: 'lossless', keepExif: true }))
    expect(Buffer.from(result.data).equals(input)).toBe(true)
  })
})
