import sharp from 'sharp'
import { describe, expect, it, vi } from 'vitest'
import * as encoder from '../../src/engine/encode.ts'
import { optimizeImage } from '../../src/engine/index.ts'
import { DISTANCE_LIMITS } from '../../src/engine/lossy.ts'
import * as metric from '../../src/engine/metric.ts'
import * as residual from '../../src/engine/png-residual.ts'
import { fixture, params } from './_helpers.ts'

vi.mock('../../src/engine/encode.ts', async (original) => {
  const actual = await original<typeof encoder>()
  return { ...actual, applyEncoder: vi.fn(actual.applyEncoder) }
})
vi.mock('../../src/engine/metric.ts', async (original) => {
  const actual = await original<typeof metric>()
  return { ...actual, distanceTo: vi.fn(actual.distanceTo) }
})
vi.mock('../../src/engine/png-residual.ts', async (original) => {
  const actual = await original<typeof residual>()
  return { ...actual, quantizeResiduals: vi.fn(actual.quantizeResiduals) }
})

/** The qualities of the palette encodes made since the encoder mock was last cleared. */
function paletteQualities(): number[] {
  return vi
    .mocked(encoder.applyEncoder)
    .mock.calls.map(([, s]) => s)
    .filter((s) => s.kind === 'png-palette')
    .map((s) => (s as { quality: number }).quality)
}

describe('what the search spends', () => {
  it('skips the residual search when even its coarsest step is no smaller than the palette (flat art)', async () => {
    const quantize = vi.mocked(residual.quantizeResiduals)
    quantize.mockClear()
    const result = await optimizeImage(fixture('horse.png'), params())
    expect(result.settings).toMatch(/palette/)
    // One quantization (the coarsest step, to compare bytes), no bisection over the steps.
    expect(quantize).toHaveBeenCalledTimes(1)
  })

  it('still searches residuals where they win (a photo)', async () => {
    const quantize = vi.mocked(residual.quantizeResiduals)
    quantize.mockClear()
    const result = await optimizeImage(fixture('chelsea.png'), params())
    expect(result.settings).toMatch(/residual/)
    expect(quantize.mock.calls.length).toBeGreaterThan(2)
  })
})

describe('the palette search', () => {
  it('stops at a missing probe whose palette is full: every higher quality encodes the same (a photo)', async () => {
    const encode = vi.mocked(encoder.applyEncoder)
    encode.mockClear()
    const result = await optimizeImage(fixture('chelsea.png'), params())
    expect(result.settings).toMatch(/residual/)
    expect(paletteQualities()).toEqual([95])
  })

  it('starts at q95 on flat vector art, whose anti-aliased edges a lower palette turns into staircases', async () => {
    // Flat colours with long anti-aliased curves between saturated neighbours, as in the held-back card.
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800">
      <rect width="1200" height="800" fill="#1c8c8c"/>
      <path d="M0 520 C 250 380, 520 660, 800 470 S 1100 360, 1200 430 L1200 800 L0 800 Z" fill="#e8913a"/>
      <path d="M0 640 C 300 560, 600 760, 900 620 S 1150 600, 1200 650 L1200 800 L0 800 Z" fill="#c2572b"/>
      <circle cx="930" cy="190" r="95" fill="#f6d36b"/>
    </svg>`
    const art = await sharp(Buffer.from(svg)).png().toBuffer()
    const encode = vi.mocked(encoder.applyEncoder)
    encode.mockClear()
    const result = await optimizeImage(art, params())
    expect(result.settings).toMatch(/palette q(95|100)/)
    expect(Math.min(...paletteQualities())).toBe(95)
    // ultra, whose looser bound allows some visible damage, keeps q90.
    encode.mockClear()
    await optimizeImage(art, params({ compression: 'ultra' }))
    expect(Math.min(...paletteQualities())).toBe(90)
    // A screenshot-like image with flat areas (horse.png: 79 % flat) still searches the lower qualities.
    encode.mockClear()
    await optimizeImage(fixture('horse.png'), params())
    expect(Math.min(...paletteQualities())).toBeLessThan(95)
  })

  it('reads whether a palette PNG used every colour it was allowed', async () => {
    const raw = Buffer.alloc(64 * 64 * 3)
    for (let i = 0; i < 64 * 64; i++) raw.fill((i % 3) * 100, i * 3, i * 3 + 3)
    const three = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png({ palette: true, colours: 256, dither: 0 }).toBuffer()
    expect(encoder.paletteIsFull(three, 3)).toBe(true)
    expect(encoder.paletteIsFull(three, 256)).toBe(false)
    const photo = await sharp(fixture('chelsea.png')).png({ palette: true, quality: 100, colours: 256 }).toBuffer()
    expect(encoder.paletteIsFull(photo, 256)).toBe(true)
    // Truecolour: no PLTE chunk.
    expect(encoder.paletteIsFull(fixture('chelsea.png'), 256)).toBe(false)
  })
})

describe('the JPEG search', () => {
  const probesOf = (calls: [unknown, encoder.EncoderSettings][]): number[] =>
    calls.map(([, s]) => s).filter((s) => s.kind === 'jpeg' && s.probe).map((s) => (s as { quality: number }).quality)

  it('predicts the next quality from the distances measured, and lands on the lowest passing one', async () => {
    const encode = vi.mocked(encoder.applyEncoder)
    const distance = vi.mocked(metric.distanceTo)
    // rocket.jpg re-saved at q95: bisection (80, 88, 95, 90) ran out of probes at 90 and shipped 95,
    // where 92 is the lowest quality within the limit.
    const input = await sharp(fixture('rocket.jpg')).jpeg({ quality: 95, chromaSubsampling: '4:2:0' }).toBuffer()
    encode.mockClear()
    distance.mockClear()
    const result = await optimizeImage(input, params())
    const probes = probesOf(encode.mock.calls)
    const distances = await Promise.all(distance.mock.results.map((r) => r.value as Promise<number>))
    expect(distances).toHaveLength(probes.length)
    const pick = Number(/jpeg q(\d+)/.exec(result.settings)![1])
    expect(probes).toContain(pick)
    expect(distances[probes.indexOf(pick)]).toBeLessThanOrEqual(DISTANCE_LIMITS.intelligent.jpeg)
    // The step below the pick was measured, and failed: the pick is the lowest passing quality.
    const below = probes.indexOf(90)
    expect(pick).toBe(92)
    expect(distances[below]).toBeGreaterThan(DISTANCE_LIMITS.intelligent.jpeg)
  })

  it('ships a JPEG searched whole with optimised scans: the pick encoded again, same pixels, fewer bytes', async () => {
    const encode = vi.mocked(encoder.applyEncoder)
    encode.mockClear()
    // 640x427: small enough to be searched whole, so its probes are the image itself.
    const input = await sharp(fixture('rocket.jpg')).jpeg({ quality: 95, chromaSubsampling: '4:2:0' }).toBuffer()
    const result = await optimizeImage(input, params())
    const q = Number(/jpeg q(\d+)/.exec(result.settings)![1])
    const settings = encode.mock.calls.map(([, s]) => s).filter((s) => s.kind === 'jpeg' && s.quality === q)
    expect(settings.map((s) => Boolean((s as { probe?: boolean }).probe))).toEqual([true, false])
    expect((await sharp(result.data).metadata()).isProgressive).toBe(true)
    const probe = await sharp(input).jpeg({ quality: q, mozjpeg: true, chromaSubsampling: '4:2:0', optimiseScans: false }).toBuffer()
    expect(result.data.length).toBeLessThan(probe.length)
    expect((await sharp(result.data).raw().toBuffer()).equals(await sharp(probe).raw().toBuffer())).toBe(true)
  })

  it('never ships a candidate the metric could not compare (an infinite distance is a miss, not a floor)', async () => {
    const distance = vi.mocked(metric.distanceTo)
    distance.mockResolvedValue(Infinity)
    try {
      const input = fixture('rocket.jpg')
      const result = await optimizeImage(input, params())
      expect(result.settings).toBe('input')
      expect(Buffer.from(result.data).equals(input)).toBe(true)
    } finally {
      distance.mockReset()
      distance.mockImplementation((await vi.importActual<typeof metric>('../../src/engine/metric.ts')).distanceTo)
    }
  })

  it('WebP (no documented quantizer scale) bisects, retrying at 88 after a miss at 80', async () => {
    const encode = vi.mocked(encoder.applyEncoder)
    const input = await sharp(fixture('page.png')).webp({ quality: 95 }).toBuffer()
    encode.mockClear()
    const result = await optimizeImage(input, params())
    const probes = encode.mock.calls.map(([, s]) => s).filter((s) => s.kind === 'webp').map((s) => (s as { quality: number }).quality)
    expect(probes.slice(0, 2)).toEqual([80, 88])
    expect(result.settings).toMatch(/^webp q(85|88|90|92|95)$/)
  })
})

describe('lossless PNG', () => {
  const greyMap = async (levels: number): Promise<Buffer> => {
    const width = 256
    const height = 160
    const raw = Buffer.alloc(width * height * 3)
    // A rough height map quantized to `levels` grey levels, stored as RGB.
    for (let i = 0; i < width * height; i++) raw.fill(Math.floor(((((i * 2654435761) >>> 24) + (i % width)) % 256) / (256 / levels)) * Math.floor(255 / (levels - 1)), i * 3, i * 3 + 3)
    return sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer()
  }
  const encodes = async (input: Buffer): Promise<{ settings: string; kinds: string[] }> => {
    const encode = vi.mocked(encoder.applyEncoder)
    encode.mockClear()
    const result = await optimizeImage(input, params({ compression: 'lossless' }))
    return { settings: result.settings, kinds: encode.mock.calls.map(([, s]) => (s.kind === 'png-lossless' && s.palette ? 'palette' : s.kind)) }
  }

  it('does not encode a palette beside an exact grey PNG of many levels', async () => {
    const { settings, kinds } = await encodes(await greyMap(256))
    expect(settings).toBe('png lossless grey')
    expect(kinds).toEqual(['png-lossless'])
  })

  it('still tries the palette when a grey image has few enough levels to pack below 8 bits', async () => {
    const { settings, kinds } = await encodes(await greyMap(4))
    expect(kinds).toEqual(['png-lossless', 'palette'])
    expect(settings).toBe('png lossless palette')
  })
})
