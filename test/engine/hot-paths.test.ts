import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { boxBlur } from '../../src/engine/box-blur.ts'
import { simulate420 } from '../../src/engine/chroma.ts'
import {
  activityMap,
  distanceTo,
  labDistance,
  makeReference,
  METRIC_PARAMS,
  toLab,
  type LabImage,
  type MetricParams,
} from '../../src/engine/metric.ts'
import { quantizeResiduals } from '../../src/engine/png-residual.ts'
import { dropOpaqueAlpha, type Raster } from '../../src/engine/raster.ts'
import { cellStats, CELL } from '../../src/engine/tiles.ts'
import { fixture } from './_helpers.ts'

/*
 * The engine's hot loops are written for speed (streamed rows, lookup tables, word-wide tests). Each is
 * checked here against the plain definition it replaced, kept below, on random and real pixels: the
 * results must be the same to the bit, so that every choice the engine makes stays the same.
 */

// ---- Reference definitions (the straightforward versions) ----

function refBoxBlur(src: Float32Array, width: number, height: number, radius: number): Float32Array {
  if (radius <= 0) return src.slice()
  const tmp = new Float32Array(src.length)
  const out = new Float32Array(src.length)
  for (let y = 0; y < height; y++) refBlurLine(src, tmp, y * width, 1, width, radius)
  for (let x = 0; x < width; x++) refBlurLine(tmp, out, x, width, height, radius)
  return out
}

function refBlurLine(src: Float32Array, dst: Float32Array, start: number, stride: number, length: number, r: number): void {
  let sum = 0
  let count = 0
  for (let k = 0; k <= Math.min(r, length - 1); k++) {
    sum += src[start + k * stride]!
    count++
  }
  for (let k = 0; k < length; k++) {
    dst[start + k * stride] = sum / count
    if (k + r + 1 < length) {
      sum += src[start + (k + r + 1) * stride]!
      count++
    }
    if (k - r >= 0) {
      sum -= src[start + (k - r) * stride]!
      count--
    }
  }
}

function refActivityMap(lab: LabImage, radius: number): Float32Array {
  const mean = refBoxBlur(lab.L, lab.width, lab.height, radius)
  const dev = new Float32Array(mean.length)
  for (let i = 0; i < dev.length; i++) dev[i] = Math.abs(lab.L[i]! - mean[i]!)
  return refBoxBlur(dev, lab.width, lab.height, radius)
}

function refLabDistance(ref: { lab: LabImage; activity: Float32Array }, cand: LabImage, params: MetricParams, mask?: Uint8Array): number {
  const { lab, activity } = ref
  if (lab.width !== cand.width || lab.height !== cand.height) return Infinity
  const n = lab.width * lab.height
  const err = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const dL = lab.L[i]! - cand.L[i]!
    const da = lab.a[i]! - cand.a[i]!
    const db = lab.b[i]! - cand.b[i]!
    err[i] = dL * dL + params.chromaWeight * (da * da + db * db)
  }
  const pooled = refBoxBlur(err, lab.width, lab.height, params.errorRadius)
  const chromaScale = params.chromaScale ?? 0
  let colour: Float32Array | null = null
  if (chromaScale > 0) {
    for (let i = 0; i < n; i++) {
      const da = lab.a[i]! - cand.a[i]!
      const db = lab.b[i]! - cand.b[i]!
      err[i] = da * da + db * db
    }
    colour = refBoxBlur(err, lab.width, lab.height, params.chromaRadius ?? params.errorRadius)
  }
  const bandWeight = params.bandWeight ?? 0
  let band: Float32Array | null = null
  if (bandWeight > 0) {
    const dL = new Float32Array(n)
    for (let i = 0; i < n; i++) dL[i] = lab.L[i]! - cand.L[i]!
    band = refBoxBlur(dL, lab.width, lab.height, params.bandRadius ?? 8)
  }
  let worst = 0
  let counted = n
  for (let i = 0; i < n; i++) {
    if (mask && mask[i] === 0) {
      pooled[i] = 0
      counted--
      continue
    }
    let e = Math.sqrt(Math.max(0, pooled[i]!))
    if (band) e = Math.max(e, bandWeight * Math.abs(band[i]!))
    if (colour) e = Math.max(e, chromaScale * Math.sqrt(Math.max(0, colour[i]!)))
    const s = e / (params.maskFloor + params.maskSlope * activity[i]!)
    pooled[i] = s
    if (s > worst) worst = s
  }
  const top = params.poolTop ?? 0
  return params.scale * (top > 0 ? refTopQuantile(pooled, worst, (top * counted) / n) : worst)
}

function refTopQuantile(scores: Float32Array, max: number, fraction: number): number {
  if (max <= 0) return 0
  const bins = 4096
  const hist = new Uint32Array(bins)
  const k = (bins - 1) / max
  for (let i = 0; i < scores.length; i++) hist[Math.min(bins - 1, Math.floor(scores[i]! * k) | 0)]!++
  const wanted = Math.max(1, Math.floor(scores.length * fraction))
  let seen = 0
  for (let b = bins - 1; b >= 0; b--) {
    seen += hist[b]!
    if (seen >= wanted) return (b + 0.5) / k
  }
  return 0
}

function refQuantizeResiduals(raw: Uint8Array, width: number, height: number, channels: number, hasAlpha: boolean, step: number) {
  const stride = width * channels
  const pixels = new Uint8Array(raw.length)
  const filtered = new Uint8Array((stride + 1) * height)
  const alphaChannel = hasAlpha ? channels - 1 : -1
  const half = step / 2
  for (let y = 0; y < height; y++) {
    const row = y * stride
    const out = y * (stride + 1)
    filtered[out] = 4
    for (let x = 0; x < stride; x++) {
      const i = row + x
      const a = x >= channels ? pixels[i - channels]! : 0
      const b = y > 0 ? pixels[i - stride]! : 0
      const c = x >= channels && y > 0 ? pixels[i - stride - channels]! : 0
      const p = a + b - c
      const pa = Math.abs(p - a)
      const pb = Math.abs(p - b)
      const pc = Math.abs(p - c)
      const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      const orig = raw[i]!
      let value = orig
      if (x % channels !== alphaChannel) {
        const d = orig - pred
        const q = d >= 0 ? Math.floor((d + half) / step) * step : -Math.floor((-d + half) / step) * step
        value = Math.min(255, Math.max(0, pred + q))
      }
      pixels[i] = value
      filtered[out + 1 + x] = (value - pred) & 0xff
    }
  }
  return { pixels, filtered }
}

function refDropOpaqueAlpha(r: Raster): Raster {
  const c = r.channels
  for (let i = c - 1; i < r.data.length; i += c) if (r.data[i] !== 255) return r
  const out = new Uint8Array(r.width * r.height * (c - 1))
  for (let i = 0, j = 0; i < r.data.length; i += c, j += c - 1) for (let k = 0; k < c - 1; k++) out[j + k] = r.data[i + k]!
  return { data: out, width: r.width, height: r.height, channels: c - 1 }
}

function refSimulate420(r: Raster): Raster {
  if (r.channels < 3) return r
  const { width, height, channels: c, data } = r
  const out = new Uint8Array(data.length)
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v))
  for (let by = 0; by < height; by += 2) {
    for (let bx = 0; bx < width; bx += 2) {
      let cb = 0
      let cr = 0
      let n = 0
      for (let y = by; y < Math.min(by + 2, height); y++) {
        for (let x = bx; x < Math.min(bx + 2, width); x++) {
          const i = (y * width + x) * c
          cb += -0.168736 * data[i]! - 0.331264 * data[i + 1]! + 0.5 * data[i + 2]!
          cr += 0.5 * data[i]! - 0.418688 * data[i + 1]! - 0.081312 * data[i + 2]!
          n++
        }
      }
      cb /= n
      cr /= n
      for (let y = by; y < Math.min(by + 2, height); y++) {
        for (let x = bx; x < Math.min(bx + 2, width); x++) {
          const i = (y * width + x) * c
          const Y = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!
          out[i] = clamp(Y + 1.402 * cr)
          out[i + 1] = clamp(Y - 0.344136 * cb - 0.714136 * cr)
          out[i + 2] = clamp(Y + 1.772 * cb)
          if (c === 4) out[i + 3] = data[i + 3]!
        }
      }
    }
  }
  return { ...r, data: out }
}

function refCellStats(r: Raster, x0: number, y0: number): { ringing: number; bleeding: number; smooth: number } {
  const c = r.channels
  const colour = c >= 3
  const luma = (i: number, col: boolean): number => (col ? 0.299 * r.data[i]! + 0.587 * r.data[i + 1]! + 0.114 * r.data[i + 2]! : r.data[i]!)
  const chromaStep = (i: number, j: number): number => {
    const li = luma(i, true)
    const lj = luma(j, true)
    return Math.abs(r.data[i + 2]! - li - (r.data[j + 2]! - lj)) + Math.abs(r.data[i]! - li - (r.data[j]! - lj))
  }
  let detail = 0
  let flat = 0
  let maxStep = 0
  let maxChroma = 0
  let n = 0
  let min = 255
  let max = 0
  for (let y = y0; y < y0 + CELL - 4; y += 4) {
    for (let x = x0; x < x0 + CELL - 4; x += 4) {
      const i = (y * r.width + x) * c
      const right = i + 4 * c
      const down = i + 4 * r.width * c
      const l = luma(i, colour)
      const step = Math.abs(luma(right, colour) - l) + Math.abs(luma(down, colour) - l)
      detail += step
      if (step < 2) flat++
      if (step > maxStep) maxStep = step
      if (colour) {
        const cs = chromaStep(i, right) + chromaStep(i, down)
        if (cs > maxChroma) maxChroma = cs
      }
      if (l < min) min = l
      if (l > max) max = l
      n++
    }
  }
  detail /= n
  const flatShare = flat / n
  return { ringing: maxStep * flatShare, bleeding: maxChroma * flatShare, smooth: detail < 1.5 ? (max - min) / (0.5 + detail) : 0 }
}

// ---- Data ----

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomLab(width: number, height: number, rnd: () => number): LabImage {
  const n = width * height
  const plane = (scale: number, offset: number): Float32Array => Float32Array.from({ length: n }, () => offset + scale * rnd())
  return { width, height, L: plane(100, 0), a: plane(160, -80), b: plane(160, -80) }
}

/** The reference plus small noise: a candidate's distance lives in the same range as an encode's. */
function perturbed(lab: LabImage, amount: number, rnd: () => number): LabImage {
  const jitter = (p: Float32Array): Float32Array => p.map((v) => v + amount * (rnd() - 0.5) * (rnd() < 0.1 ? 20 : 1))
  return { ...lab, L: jitter(lab.L), a: jitter(lab.a), b: jitter(lab.b) }
}

function randomRaster(width: number, height: number, channels: number, rnd: () => number, smooth = false): Raster {
  const data = new Uint8Array(width * height * channels)
  for (let i = 0; i < data.length; i++) data[i] = smooth ? (((i / channels) % width) + (rnd() * 6) - 3) & 0xff : Math.floor(rnd() * 256)
  return { data, width, height, channels }
}

async function decoded(name: string): Promise<Raster> {
  const { data, info } = await sharp(fixture(name)).raw().toBuffer({ resolveWithObject: true })
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels }
}

/** The first index where two planes differ in any bit (-1: none), cheap to report when they do. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length)
  return x.findIndex((v, i) => v !== y[i])
}

function sameRaster(a: Raster, b: Raster): boolean {
  return a.width === b.width && a.height === b.height && a.channels === b.channels && Buffer.from(a.data).equals(Buffer.from(b.data))
}

const SIZES: [number, number][] = [[1, 1], [1, 9], [9, 1], [2, 3], [5, 5], [7, 13], [64, 3], [37, 41], [200, 150]]

// ---- Tests ----

describe('box blur', () => {
  it('is bit-identical to the two-pass definition for every size and radius', () => {
    const rnd = random(1)
    for (const [w, h] of SIZES) {
      const src = Float32Array.from({ length: w * h }, () => rnd() * 200 - 50)
      for (const r of [0, 1, 2, 3, 4, 8, 20]) expect(firstDifference(boxBlur(src, w, h, r), refBoxBlur(src, w, h, r)), `${w}x${h} r${r}`).toBe(-1)
    }
  })

  it('activityMap matches on a real image', async () => {
    const lab = await toLab(sharp(fixture('chelsea.png')), null, null)
    expect(firstDifference(activityMap(lab, 3), refActivityMap(lab, 3))).toBe(-1)
  })
})

describe('labDistance', () => {
  const variants: [string, MetricParams][] = [
    ['default', METRIC_PARAMS],
    ['no colour term, no pooling', { ...METRIC_PARAMS, chromaScale: 0, poolTop: 0 }],
    ['banding term, unequal radii', { ...METRIC_PARAMS, bandWeight: 0.8, bandRadius: 8, chromaRadius: 5, errorRadius: 2 }],
    ['radius 0', { ...METRIC_PARAMS, errorRadius: 0, chromaRadius: 1, maskRadius: 0 }],
  ]

  it('equals the per-plane definition on random data, with and without a mask', () => {
    const rnd = random(2)
    for (const [w, h] of [...SIZES, [300, 211] as [number, number]]) {
      const ref = randomLab(w, h, rnd)
      const mask = Uint8Array.from({ length: w * h }, () => (rnd() < 0.7 ? 1 : 0))
      // Noise everywhere; or one far-off pixel, whose score dwarfs the rest (the quantile's slow path).
      const outlier = { ...ref, L: ref.L.slice() }
      outlier.L[Math.floor(rnd() * w * h)]! += 90
      for (const [name, p] of variants) {
        const view = { lab: ref, activity: activityMap(ref, p.maskRadius) }
        for (const [m, cand] of [[undefined, perturbed(ref, 4, rnd)], [mask, perturbed(ref, 4, rnd)], [undefined, outlier]] as const) {
          const expected = refLabDistance(view, cand, p, m)
          expect(labDistance(view, cand, p, m), `${w}x${h} ${name}${m ? ' masked' : ''}`).toBe(expected)
          // Again with the view's scratch already there.
          expect(labDistance(view, cand, p, m)).toBe(expected)
        }
      }
    }
  })

  it('equals the definition on real encodes, through distanceTo (alpha: both backgrounds)', async () => {
    for (const name of ['chelsea.png', 'horse.png', 'rocket.jpg', 'page.png']) {
      const input = fixture(name)
      const meta = await sharp(input).metadata()
      const hasAlpha = meta.hasAlpha === true
      const ref = await makeReference(() => sharp(input), { width: meta.width!, height: meta.height! }, hasAlpha)
      for (const quality of [30, 70, 95]) {
        const encoded = await sharp(input).jpeg({ quality }).toBuffer()
        let expected = 0
        for (const [i, bg] of ref.backgrounds.entries()) {
          const cand = await toLab(sharp(encoded), bg, ref.resize)
          expected = Math.max(expected, refLabDistance(ref.views[i]!, cand, METRIC_PARAMS))
        }
        expect(expected).toBeGreaterThan(0)
        expect(await distanceTo(ref, () => sharp(encoded)), `${name} q${quality}`).toBe(expected)
      }
    }
  })

  it('pools the same when one far-off spot dwarfs every other score (the histogram counts every bin)', () => {
    const rnd = random(8)
    const ref = randomLab(400, 400, rnd)
    const cand = perturbed(ref, 0.2, rnd)
    cand.L[200 * 400 + 200]! += 90
    const view = { lab: ref, activity: activityMap(ref, METRIC_PARAMS.maskRadius) }
    const expected = refLabDistance(view, cand, METRIC_PARAMS)
    expect(expected).toBeLessThan(1)
    expect(labDistance(view, cand, METRIC_PARAMS)).toBe(expected)
  })

  it('answers Infinity for a candidate of another size', async () => {
    const rnd = random(3)
    const ref = randomLab(20, 10, rnd)
    expect(labDistance({ lab: ref, activity: activityMap(ref, 3) }, randomLab(10, 20, rnd), METRIC_PARAMS)).toBe(Infinity)
  })
})

describe('pixel loops', () => {
  it('quantizeResiduals equals the definition, every layout and step', async () => {
    const rnd = random(4)
    const cases: [string, Raster, boolean][] = [
      ['horse', await decoded('horse.png'), true],
      ['chelsea', await decoded('chelsea.png'), false],
    ]
    for (const channels of [1, 2, 3, 4]) {
      for (const [w, h] of SIZES) {
        cases.push([`${channels}ch ${w}x${h}`, randomRaster(w, h, channels, rnd), channels % 2 === 0])
        cases.push([`${channels}ch ${w}x${h} smooth`, randomRaster(w, h, channels, rnd, true), false])
      }
    }
    for (const [name, r, alpha] of cases) {
      for (const step of [1, 2, 3, 7, 16]) {
        const got = quantizeResiduals(r.data, r.width, r.height, r.channels, alpha, step)
        const want = refQuantizeResiduals(r.data, r.width, r.height, r.channels, alpha, step)
        expect(Buffer.from(got.pixels).equals(Buffer.from(want.pixels)), `${name} step ${step}`).toBe(true)
        expect(Buffer.from(got.filtered).equals(Buffer.from(want.filtered)), `${name} step ${step}`).toBe(true)
      }
    }
  })

  it('dropOpaqueAlpha equals the definition: opaque, one translucent pixel anywhere, odd offsets', async () => {
    const rnd = random(5)
    for (const channels of [2, 4]) {
      for (const [w, h] of [...SIZES, [131, 97] as [number, number]]) {
        const r = randomRaster(w, h, channels, rnd)
        for (let i = channels - 1; i < r.data.length; i += channels) r.data[i] = 255
        const opaque = dropOpaqueAlpha(r)
        expect(opaque.channels).toBe(channels - 1)
        expect(sameRaster(opaque, refDropOpaqueAlpha(r))).toBe(true)
        // One pixel not opaque, at the start, the end, or in between: the alpha must stay.
        for (const at of [0, w * h - 1, Math.floor(rnd() * w * h)]) {
          const data = r.data.slice()
          data[at * channels + channels - 1] = 254
          const kept = { ...r, data }
          expect(dropOpaqueAlpha(kept)).toBe(kept)
        }
        // A view that does not start on a word boundary.
        const shifted = new Uint8Array(r.data.length + 1).subarray(1)
        shifted.set(r.data)
        expect(sameRaster(dropOpaqueAlpha({ ...r, data: shifted }), refDropOpaqueAlpha({ ...r, data: shifted }))).toBe(true)
      }
    }
    const horse = await decoded('horse.png')
    expect(dropOpaqueAlpha(horse)).toBe(horse)
  })

  it('simulate420 equals the definition, odd sizes included', async () => {
    const rnd = random(6)
    for (const channels of [3, 4]) {
      for (const [w, h] of SIZES) {
        const r = randomRaster(w, h, channels, rnd)
        expect(Buffer.from(simulate420(r).data).equals(Buffer.from(refSimulate420(r).data)), `${channels}ch ${w}x${h}`).toBe(true)
      }
    }
    for (const name of ['chelsea.png', 'horse.png']) {
      const r = await decoded(name)
      expect(Buffer.from(simulate420(r).data).equals(Buffer.from(refSimulate420(r).data)), name).toBe(true)
    }
  })

  it('cellStats equals the definition on every cell', async () => {
    const rnd = random(7)
    const rasters = [await decoded('chelsea.png'), randomRaster(300, 290, 3, rnd), randomRaster(300, 290, 1, rnd, true), randomRaster(290, 300, 4, rnd)]
    for (const r of rasters) {
      for (let y = 0; y + CELL <= r.height; y += CELL) {
        for (let x = 0; x + CELL <= r.width; x += CELL) expect(cellStats(r, x, y)).toEqual(refCellStats(r, x, y))
      }
    }
  })
})
