import sharp, { type Sharp } from 'sharp'
import { describe, expect, it } from 'vitest'
import { ENGINE_VERSION, optimizeImage } from '../../src/engine/index.ts'
import { fixture, params } from './_helpers.ts'

/** 64 x 32: left half red, right half blue. */
function redBlue(): Sharp {
  return sharp({ create: { width: 64, height: 32, channels: 3, background: '#0000ff' } }).composite([
    { input: { create: { width: 32, height: 32, channels: 3, background: '#ff0000' } }, left: 0, top: 0 },
  ])
}

async function pixelAt(bytes: Uint8Array, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(bytes).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true })
  const i = (y * info.width + x) * info.channels
  return [...data.subarray(i, i + 3)]
}

const isRed = (p: number[]): boolean => p[0]! > 200 && p[2]! < 60
const isBlue = (p: number[]): boolean => p[2]! > 200 && p[0]! < 60

describe('parameters', () => {
  it('keep_exif=0 strips EXIF, keep_exif=1 keeps it', async () => {
    const input = await sharp(fixture('rocket.jpg')).withExif({ IFD0: { Copyright: 'Kept 2026' } }).jpeg({ quality: 95 }).toBuffer()
    const stripped = await optimizeImage(input, params())
    const kept = await optimizeImage(input, params({ keepExif: true }))
    const exif = async (b: Uint8Array): Promise<Buffer> => Buffer.from((await sharp(b).metadata()).exif ?? [])
    expect((await exif(stripped.data)).includes('Kept 2026')).toBe(false)
    expect((await exif(kept.data)).includes('Kept 2026')).toBe(true)
  })

  it('auto-orients before stripping, so a photo with EXIF orientation 6 stays upright', async () => {
    const input = await redBlue().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer()
    // Shown upright (rotated 90° clockwise): 32 wide, 64 tall, red on top.
    expect(isRed(await pixelAt(input, 16, 8))).toBe(true)
    for (const compression of ['intelligent', 'ultra', 'lossless'] as const) {
      for (const keepExif of [false, true]) {
        const result = await optimizeImage(input, params({ compression, keepExif }))
        const meta = await sharp(result.data).metadata()
        const shown = (meta.orientation ?? 1) >= 5 ? [meta.height, meta.width] : [meta.width, meta.height]
        expect(shown).toEqual([32, 64])
        expect(isRed(await pixelAt(result.data, 16, 8))).toBe(true)
        expect(isBlue(await pixelAt(result.data, 16, 56))).toBe(true)
      }
    }
  })

  it('cmyktorgb=1 converts CMYK to sRGB, cmyktorgb=0 leaves CMYK alone', async () => {
    const cmyk = await sharp(fixture('rocket.jpg')).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer()
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk')
    for (const compression of ['intelligent', 'lossless'] as const) {
      const converted = await optimizeImage(cmyk, params({ compression, cmykToRgb: true }))
      const m = await sharp(converted.data).metadata()
      expect([m.space, m.channels]).toEqual(['srgb', 3])
      const kept = await optimizeImage(cmyk, params({ compression, cmykToRgb: false }))
      expect((await sharp(kept.data).metadata()).space).toBe('cmyk')
    }
    // And the colours survive the trip: rocket.jpg's sky stays the same blue-ish grey.
    const converted = await optimizeImage(cmyk, params({ cmykToRgb: true }))
    const [a, b] = await Promise.all([pixelAt(fixture('rocket.jpg'), 10, 10), pixelAt(converted.data, 10, 10)])
    for (let c = 0; c < 3; c++) expect(Math.abs(a[c]! - b[c]!)).toBeLessThan(20)
  })

  it('max_width / max_height fit inside the box and never enlarge', async () => {
    const input = fixture('rocket.jpg') // 640 x 427
    const cases: [number, number, number, number][] = [
      [320, 0, 320, 214],
      [0, 100, 150, 100],
      [320, 100, 150, 100],
      [2000, 2000, 640, 427],
      [0, 0, 640, 427],
    ]
    for (const [maxWidth, maxHeight, w, h] of cases) {
      for (const compression of ['intelligent', 'lossless'] as const) {
        const result = await optimizeImage(input, params({ compression, maxWidth, maxHeight }))
        const meta = await sharp(result.data).metadata()
        expect([meta.width, meta.height], `${compression} ${maxWidth}x${maxHeight}`).toEqual([w, h])
        expect([result.width, result.height]).toEqual([w, h])
      }
    }
  })

  it('returns a WebP version only when it is smaller than the original', async () => {
    const photo = await optimizeImage(fixture('rocket.jpg'), params({ webp: true }))
    expect(photo.webp).not.toBeNull()
    expect(photo.webp!.length).toBeLessThan(fixture('rocket.jpg').length)
    expect((await sharp(photo.webp!).metadata()).format).toBe('webp')

    // Noise squeezed into a quality-5 JPEG: any faithful WebP of it is larger than the JPEG.
    const noise = await sharp(Buffer.from(Array.from({ length: 96 * 96 * 3 }, (_, i) => (i * 2654435761) >>> 24)), {
      raw: { width: 96, height: 96, channels: 3 },
    })
      .jpeg({ quality: 5 })
      .toBuffer()
    const result = await optimizeImage(noise, params({ webp: true }))
    expect(result.webp).toBeNull()

    const off = await optimizeImage(fixture('rocket.jpg'), params({ webp: false }))
    expect(off.webp).toBeNull()
  })

  it('has an ENGINE_VERSION that names the sharp it runs on', () => {
    expect(ENGINE_VERSION).toMatch(/^megaoptim-engine\/\d+ sharp\/\d+\.\d+\.\d+$/)
  })
})

describe('a box that shrinks only one side', () => {
  it('a 1x1000 image in a 500-pixel-high box comes out 1x500, even when lossless finds nothing to gain', async () => {
    // A JPEG without metadata: lossless can only strip metadata, so it has nothing smaller than the input.
    const input = await sharp({ create: { width: 1, height: 1000, channels: 3, background: '#c81e1e' } })
      .jpeg({ quality: 90 })
      .toBuffer()
    for (const compression of ['lossless', 'intelligent'] as const) {
      const out = await optimizeImage(input, params({ compression, maxHeight: 500 }))
      expect([out.width, out.height], compression).toEqual([1, 500])
      const meta = await sharp(out.data).metadata()
      expect([meta.width, meta.height], compression).toEqual([1, 500])
    }
  })
})
