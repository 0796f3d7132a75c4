import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import sharp, { type Sharp } from 'sharp'
import { describe, expect, it, vi } from 'vitest'
import { CoreView } from '../../src/engine/metric-core.ts'
import { activityMap, coreParams, distanceTo, labDistance, makeReference, METRIC_PARAMS, toLab, type MetricParams } from '../../src/engine/metric.ts'
import { decodeRaster, fromRaster } from '../../src/engine/raster.ts'
import { mosaic, planTiles, seamMask } from '../../src/engine/tiles.ts'
import { fixture } from './_helpers.ts'

/*
 * The WebAssembly core (assembly/metric.ts) replaces the TypeScript measurement and libvips' Lab conversion
 * on every probe: each choice the engine makes depends on its distances, so they must be the TypeScript's
 * to the bit, and its CIELAB libvips' to the bit.
 */

/** The shipped parameters, as the engine hands them to the core. */
const CORE_PARAMS = coreParams(METRIC_PARAMS)!

/** The TypeScript measurement on libvips' Lab: what the core must equal. */
async function typescriptDistance(
  reference: () => Sharp,
  candidate: Buffer,
  backgrounds: (string | null)[],
  resize: { width: number; height: number } | null,
  mask?: Uint8Array,
  params: MetricParams = METRIC_PARAMS,
): Promise<number> {
  let worst = 0
  for (const bg of backgrounds) {
    const lab = await toLab(reference(), bg, resize)
    const view = { lab, activity: activityMap(lab, params.maskRadius) }
    worst = Math.max(worst, labDistance(view, await toLab(sharp(candidate), bg, resize), params, mask))
  }
  return worst
}

describe('metric core (WebAssembly)', () => {
  it('is assembly/metric.ts as compiled now (the committed binary is not stale)', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    await expect(promisify(execFile)(process.execPath, ['assembly/build.mjs', '--check'], { cwd: root })).resolves.toBeDefined()
  }, 60_000)

  it("makes libvips' CIELAB to the bit on every 8-bit sRGB colour", async () => {
    // All 2^24 colours, each once, in 16 strips of 4096 x 256 pixels.
    const width = 4096
    const height = 256
    for (let strip = 0; strip < 16; strip++) {
      const data = Buffer.alloc(width * height * 3)
      for (let i = 0; i < width * height; i++) {
        const colour = strip * width * height + i
        data[i * 3] = colour >> 16
        data[i * 3 + 1] = (colour >> 8) & 255
        data[i * 3 + 2] = colour & 255
      }
      const view = await CoreView.create({ data, width, height, channels: 3 }, CORE_PARAMS)
      const lab = await sharp(data, { raw: { width, height, channels: 3 } }).toColourspace('lab').raw({ depth: 'float' }).toBuffer()
      const expected = new Float32Array(lab.buffer, lab.byteOffset, lab.byteLength / 4)
      let mismatches = 0
      for (let i = 0; i < width * height; i++) {
        if (view.L[i] !== expected[i * 3] || view.a[i] !== expected[i * 3 + 1] || view.b[i] !== expected[i * 3 + 2]) mismatches++
      }
      expect(mismatches, `strip ${strip}`).toBe(0)
    }
  }, 120_000)

  it('measures what the TypeScript measures: photos, alpha on both backgrounds, palettes, shrunk references', async () => {
    for (const name of ['chelsea.png', 'rocket.jpg', 'horse.png', 'page.png', 'text.png']) {
      const input = fixture(name)
      const meta = await sharp(input).metadata()
      const hasAlpha = meta.hasAlpha === true
      const backgrounds = hasAlpha ? ['#ffffff', '#000000'] : [null]
      const size = { width: meta.width!, height: meta.height! }
      for (const maxPixels of [undefined, Math.floor((size.width * size.height) / 3)]) {
        const ref = await makeReference(() => sharp(input), size, hasAlpha, METRIC_PARAMS, undefined, maxPixels)
        expect(ref.views.every((v) => v.core)).toBe(true)
        for (const quality of [30, 80]) {
          for (const encoded of [await sharp(input).jpeg({ quality }).toBuffer(), await sharp(input).png({ palette: true, quality }).toBuffer()]) {
            const expected = await typescriptDistance(() => sharp(input), encoded, backgrounds, ref.resize)
            expect(expected).toBeGreaterThan(0)
            expect(await distanceTo(ref, () => sharp(encoded)), `${name} q${quality} ${maxPixels ? 'shrunk' : 'full'}`).toBe(expected)
          }
        }
      }
    }
  }, 120_000)

  it('measures what the TypeScript measures on images narrower and shorter than the blurs (edges only)', async () => {
    let seed = 11
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)
    for (const [width, height] of [[1, 1], [1, 9], [9, 1], [2, 3], [5, 5], [7, 13], [13, 7], [64, 3]] as const) {
      const raw = { width, height, channels: 3 as const }
      const reference = Buffer.from(Array.from({ length: width * height * 3 }, () => Math.floor(rnd() * 256)))
      const candidate = Buffer.from(reference.map((v) => Math.max(0, Math.min(255, v + Math.round((rnd() - 0.5) * 40)))))
      const encoded = await sharp(candidate, { raw }).png().toBuffer()
      const ref = await makeReference(() => sharp(reference, { raw }), { width, height }, false)
      const expected = await typescriptDistance(() => sharp(reference, { raw }), encoded, [null], null)
      expect(await distanceTo(ref, () => sharp(encoded)), `${width}x${height}`).toBe(expected)
    }
  })

  it('measures what the TypeScript measures on a tile mosaic, its seams masked out', async () => {
    const big = await sharp(fixture('chelsea.png')).resize(2000, 1400, { fit: 'fill' }).png().toBuffer()
    const raster = await decodeRaster(sharp(big))
    const plan = planTiles(raster)!
    expect(plan).not.toBeNull()
    const probe = mosaic(raster, plan)
    const mask = seamMask(plan)
    const ref = await makeReference(() => fromRaster(sharp, probe), probe, false, METRIC_PARAMS, mask)
    for (const quality of [40, 90]) {
      const encoded = await fromRaster(sharp, probe).jpeg({ quality }).toBuffer()
      const expected = await typescriptDistance(() => fromRaster(sharp, probe), encoded, [null], null, mask)
      expect(await distanceTo(ref, () => sharp(encoded)), `q${quality}`).toBe(expected)
    }
  })

  it('measures what the TypeScript measures with other parameters (unequal radii, no colour term, radius 0)', async () => {
    const input = fixture('chelsea.png')
    const meta = await sharp(input).metadata()
    const encoded = await sharp(input).jpeg({ quality: 50 }).toBuffer()
    const variants: MetricParams[] = [
      { ...METRIC_PARAMS, chromaRadius: 5, errorRadius: 2 },
      { ...METRIC_PARAMS, chromaScale: 0, poolTop: 0 },
      { ...METRIC_PARAMS, errorRadius: 0, chromaRadius: 0, maskRadius: 0 },
    ]
    for (const params of variants) {
      const ref = await makeReference(() => sharp(input), { width: meta.width!, height: meta.height! }, false, params)
      expect(ref.views[0]!.core).toBeDefined()
      const expected = await typescriptDistance(() => sharp(input), encoded, [null], null, undefined, params)
      expect(await distanceTo(ref, () => sharp(encoded), params), JSON.stringify(params)).toBe(expected)
    }
  })

  it('leaves parameters it does not implement (a banding term) to the TypeScript', async () => {
    const input = fixture('rocket.jpg')
    const meta = await sharp(input).metadata()
    const banding: MetricParams = { ...METRIC_PARAMS, bandWeight: 0.8, bandRadius: 8 }
    const ref = await makeReference(() => sharp(input), { width: meta.width!, height: meta.height! }, false, banding)
    expect(ref.views[0]!.core).toBeUndefined()
    const encoded = await sharp(input).jpeg({ quality: 40 }).toBuffer()
    const lab = await toLab(sharp(input), null, null)
    const expected = labDistance({ lab, activity: activityMap(lab, banding.maskRadius) }, await toLab(sharp(encoded), null, null), banding)
    expect(await distanceTo(ref, () => sharp(encoded), banding)).toBe(expected)
  })

  it('where WebAssembly cannot compile it (no SIMD), the TypeScript measures instead: the same distance', async () => {
    vi.resetModules()
    vi.stubGlobal('WebAssembly', {
      Module: class {
        constructor() {
          throw new Error('WebAssembly SIMD unsupported')
        }
      },
    })
    try {
      const metric = await import('../../src/engine/metric.ts')
      const input = fixture('rocket.jpg')
      const meta = await sharp(input).metadata()
      const ref = await metric.makeReference(() => sharp(input), { width: meta.width!, height: meta.height! }, false)
      expect(ref.views[0]!.core).toBeUndefined()
      const encoded = await sharp(input).jpeg({ quality: 40 }).toBuffer()
      expect(await metric.distanceTo(ref, () => sharp(encoded))).toBe(await typescriptDistance(() => sharp(input), encoded, [null], null))
    } finally {
      vi.unstubAllGlobals()
      vi.resetModules()
    }
  })

  it('answers Infinity for a candidate of another size', async () => {
    const data = Buffer.alloc(20 * 10 * 3, 128)
    const view = await CoreView.create({ data, width: 20, height: 10, channels: 3 }, CORE_PARAMS)
    expect(view.distance({ data: Buffer.alloc(10 * 20 * 3), width: 10, height: 20, channels: 3 })).toBe(Infinity)
    expect(view.distance({ data, width: 20, height: 10, channels: 3 })).toBe(0)
  })
})
