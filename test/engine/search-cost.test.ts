import sharp from 'sharp'
import { describe, expect, it, vi } from 'vitest'
import * as encoder from '../../src/engine/encode.ts'
import { optimizeImage } from '../../src/engine/index.ts'
import * as residual from '../../src/engine/png-residual.ts'
import { fixture, params } from './_helpers.ts'

vi.mock('../../src/engine/encode.ts', async (original) => {
  const actual = await original<typeof encoder>()
  return { ...actual, applyEncoder: vi.fn(actual.applyEncoder) }
})
vi.mock('../../src/engine/png-residual.ts', async (original) => {
  const actual = await original<typeof residual>()
  return { ...actual, quantizeResiduals: vi.fn(actual.quantizeResiduals) }
})

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

describe('the JPEG search', () => {
  it('retries at 88 after a miss at 80, and ends a probe sooner than a jump to the top would', async () => {
    const encode = vi.mocked(encoder.applyEncoder)
    // A scanned page: text needs more than 80, and passes at 85.
    const input = await sharp(fixture('page.png')).jpeg({ quality: 95, chromaSubsampling: '4:2:0' }).toBuffer()
    encode.mockClear()
    const result = await optimizeImage(input, params())
    const probes = encode.mock.calls.map(([, s]) => s).filter((s) => s.kind === 'jpeg' && s.probe).map((s) => (s as { quality: number }).quality)
    expect(result.settings).toBe(`jpeg q${probes.at(-1)} 4:2:0`)
    expect(probes).toEqual([80, 88, 85])
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
