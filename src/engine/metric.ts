import type { Sharp as SharpInstance } from 'sharp'
import { yieldToEventLoop } from './run.ts'

/**
 * A small perceptual distance, computed in-process, meant to track butteraugli's max-norm closely enough to
 * steer the quality search (the benchmark checks it against the real butteraugli).
 *
 * Why not plain SSIM: it averages. A photo whose sky turns blocky keeps a high mean SSIM because the
 * detailed parts are fine, while the eye (and butteraugli) sees the blocks. So this metric is a local
 * maximum, not a mean, and it is masked by the reference's local activity: the same error counts more in
 * a smooth area than in texture.
 *
 *   error(x)    = sqrt(box_r1( dL² + w·(da² + db²) ))          CIELAB, local RMS of the difference
 *   activity(x) = box_r2( |L − box_r2(L)| )                       the reference's local contrast
 *   score(x)    = error(x) / (c + k·activity(x))
 *   distance    = scale · max over x of score(x)
 *
 * Transparent images are measured over white and over black; the worse one counts.
 */
export interface MetricParams {
  /** Weight of the a*,b* (chroma) error against L* (luma). */
  chromaWeight: number
  /** Radius of the window the error is pooled over (pixels). */
  errorRadius: number
  /** Radius of the activity (masking) estimate. */
  maskRadius: number
  /** Masking floor: how visible an error is in a perfectly flat area. */
  maskFloor: number
  /** Masking slope: how much texture hides an error. */
  maskSlope: number
  /** Maps the score onto butteraugli's scale (calibrated on the corpus). */
  scale: number
  /** Lightness is compared as 100·(L / 100)^darkGamma: below 1, errors in dark areas weigh more (as in butteraugli). */
  darkGamma?: number
  /**
   * Banding term: the signed lightness error averaged over a (2r+1)² window, so that noise cancels and a
   * coherent shift (a contour where a gradient used to be) remains; weighted by `bandWeight` (0 = off).
   */
  bandRadius?: number
  bandWeight?: number
  /** Pool over the worst `poolTop` fraction of pixels (0 = the single worst): one odd pixel is not a verdict. */
  poolTop?: number
  /**
   * Colour term, judged apart from lightness: the a*,b* error RMS-pooled over a (2r+1)² window (the eye
   * resolves colour more coarsely than lightness), times `chromaScale`, masked like the rest. The distance
   * is the worse of the two terms, so colour bleeding at saturated edges (4:2:0 subsampling) shows even
   * where lightness is intact. 0 = off.
   */
  chromaScale?: number
  chromaRadius?: number
}

/** Calibrated with bench/_engine-calibrate.ts against butteraugli on ../shared/corpus. */
export const METRIC_PARAMS: MetricParams = {
  // Within the lightness term chroma counts little: re-encoding a 4:2:0 JPEG shifts colour at sharp edges
  // by amounts butteraugli forgives. Colour damage it does not forgive (4:2:0 on a saturated 4:4:4 source:
  // butteraugli 7-10 whatever the quality) is the colour term's job.
  chromaWeight: 0.03,
  chromaScale: 0.25,
  chromaRadius: 3,
  errorRadius: 3,
  maskRadius: 3,
  maskFloor: 0.5,
  maskSlope: 1.5,
  scale: 1,
  poolTop: 0.0005,
}

/** Above this many pixels the metric runs on a downscaled copy (memory: ~40 bytes per metric pixel). */
export const METRIC_MAX_PIXELS = 2_200_000

export interface LabImage {
  width: number
  height: number
  L: Float32Array
  a: Float32Array
  b: Float32Array
}

export interface Reference {
  views: { lab: LabImage; activity: Float32Array }[]
  /** How to turn a candidate into the same views (backgrounds and size). */
  backgrounds: (string | null)[]
  resize: { width: number; height: number } | null
  /** Where the metric looks (1) and where not (0: a tile mosaic's seams); everywhere when absent. */
  mask?: Uint8Array
}

/** Decode a pipeline into CIELAB planes, flattened on `background` and shrunk to `resize` when given. */
export async function toLab(
  p: SharpInstance,
  background: string | null,
  resize: { width: number; height: number } | null,
  darkGamma = METRIC_PARAMS.darkGamma ?? 1,
): Promise<LabImage> {
  if (background) p = p.flatten({ background })
  if (resize) p = p.resize({ width: resize.width, height: resize.height, fit: 'fill', kernel: 'linear' })
  const { data, info } = await p.toColourspace('lab').raw({ depth: 'float' }).toBuffer({ resolveWithObject: true })
  const f = new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4)
  const n = info.width * info.height
  const channels = info.channels
  const L = new Float32Array(n)
  const a = new Float32Array(n)
  const b = new Float32Array(n)
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    L[i] = f[j]!
    a[i] = f[j + 1]!
    b[i] = f[j + 2]!
  }
  return darkenLightness({ width: info.width, height: info.height, L, a, b }, darkGamma)
}

/** Re-map L* so that dark tones get more room (see `darkGamma`); gamma 1 leaves it as is. */
export function darkenLightness(lab: LabImage, gamma: number): LabImage {
  if (gamma === 1) return lab
  const L = new Float32Array(lab.L.length)
  for (let i = 0; i < L.length; i++) L[i] = 100 * Math.pow(Math.max(0, lab.L[i]!) / 100, gamma)
  return { ...lab, L }
}

/** Prepare the reference once per image: its Lab planes and activity map, per background. */
export async function makeReference(
  pipeline: () => SharpInstance,
  size: { width: number; height: number },
  hasAlpha: boolean,
  params: MetricParams = METRIC_PARAMS,
  mask?: Uint8Array,
  maxPixels = METRIC_MAX_PIXELS,
): Promise<Reference> {
  const backgrounds = hasAlpha ? ['#ffffff', '#000000'] : [null]
  const pixels = size.width * size.height
  const shrink = pixels > maxPixels ? Math.sqrt(maxPixels / pixels) : 1
  const resize =
    shrink < 1
      ? { width: Math.max(1, Math.round(size.width * shrink)), height: Math.max(1, Math.round(size.height * shrink)) }
      : null
  const views: Reference['views'] = []
  for (const bg of backgrounds) {
    const lab = await toLab(pipeline(), bg, resize)
    await yieldToEventLoop()
    views.push({ lab, activity: activityMap(lab, params.maskRadius) })
  }
  return { views, backgrounds, resize, ...(mask && !resize ? { mask } : {}) }
}

/** The distance between the reference and a candidate (encoded bytes). */
export async function distanceTo(
  ref: Reference,
  candidate: () => SharpInstance,
  params: MetricParams = METRIC_PARAMS,
): Promise<number> {
  let worst = 0
  for (const [i, bg] of ref.backgrounds.entries()) {
    const lab = await toLab(candidate(), bg, ref.resize)
    await yieldToEventLoop()
    worst = Math.max(worst, await labDistanceYielding(ref.views[i]!, lab, params, ref.mask))
  }
  return worst
}

export function labDistance(ref: { lab: LabImage; activity: Float32Array }, cand: LabImage, params: MetricParams, mask?: Uint8Array): number {
  const steps = labDistanceSteps(ref, cand, params, mask)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/** The same, handing the event loop a turn between the passes (each a few tens of ms at 2.2 MP). */
export async function labDistanceYielding(
  ref: { lab: LabImage; activity: Float32Array },
  cand: LabImage,
  params: MetricParams,
  mask?: Uint8Array,
): Promise<number> {
  const steps = labDistanceSteps(ref, cand, params, mask)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await yieldToEventLoop()
  }
}

function* labDistanceSteps(
  ref: { lab: LabImage; activity: Float32Array },
  cand: LabImage,
  params: MetricParams,
  mask?: Uint8Array,
): Generator<void, number> {
  const { lab, activity } = ref
  if (lab.width !== cand.width || lab.height !== cand.height) return Infinity
  const n = lab.width * lab.height
  const err = new Float32Array(n)
  const w = params.chromaWeight
  for (let i = 0; i < n; i++) {
    const dL = lab.L[i]! - cand.L[i]!
    const da = lab.a[i]! - cand.a[i]!
    const db = lab.b[i]! - cand.b[i]!
    err[i] = dL * dL + w * (da * da + db * db)
  }
  yield
  const pooled = boxBlur(err, lab.width, lab.height, params.errorRadius)
  yield
  const chromaScale = params.chromaScale ?? 0
  let colour: Float32Array | null = null
  if (chromaScale > 0) {
    for (let i = 0; i < n; i++) {
      const da = lab.a[i]! - cand.a[i]!
      const db = lab.b[i]! - cand.b[i]!
      err[i] = da * da + db * db
    }
    colour = boxBlur(err, lab.width, lab.height, params.chromaRadius ?? params.errorRadius)
    yield
  }
  const bandWeight = params.bandWeight ?? 0
  let band: Float32Array | null = null
  if (bandWeight > 0) {
    const dL = new Float32Array(n)
    for (let i = 0; i < n; i++) dL[i] = lab.L[i]! - cand.L[i]!
    band = boxBlur(dL, lab.width, lab.height, params.bandRadius ?? 8)
    yield
  }
  let worst = 0
  let counted = n
  for (let i = 0; i < n; i++) {
    if (mask && mask[i] === 0) {
      pooled[i] = 0
      counted--
      continue
    }
    // Running sums can leave a tiny negative: NaN here would also knock topQuantile off its fast path.
    let e = Math.sqrt(Math.max(0, pooled[i]!))
    if (band) e = Math.max(e, bandWeight * Math.abs(band[i]!))
    if (colour) e = Math.max(e, chromaScale * Math.sqrt(Math.max(0, colour[i]!)))
    const s = e / (params.maskFloor + params.maskSlope * activity[i]!)
    pooled[i] = s
    if (s > worst) worst = s
  }
  yield
  const top = params.poolTop ?? 0
  return params.scale * (top > 0 ? topQuantile(pooled, worst, (top * counted) / n) : worst)
}

/** The score exceeded by a `fraction` of pixels, from a 4096-bin histogram (linear time, no sort). */
function topQuantile(scores: Float32Array, max: number, fraction: number): number {
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

/** Local mean absolute deviation of L* around its local mean. */
export function activityMap(lab: LabImage, radius: number): Float32Array {
  const mean = boxBlur(lab.L, lab.width, lab.height, radius)
  const dev = new Float32Array(mean.length)
  for (let i = 0; i < dev.length; i++) dev[i] = Math.abs(lab.L[i]! - mean[i]!)
  return boxBlur(dev, lab.width, lab.height, radius)
}

/** Separable box blur with running sums; edges average over the pixels that exist. */
export function boxBlur(src: Float32Array, width: number, height: number, radius: number): Float32Array {
  if (radius <= 0) return src.slice()
  const tmp = new Float32Array(src.length)
  const out = new Float32Array(src.length)
  for (let y = 0; y < height; y++) blurLine(src, tmp, y * width, 1, width, radius)
  for (let x = 0; x < width; x++) blurLine(tmp, out, x, width, height, radius)
  return out
}

function blurLine(src: Float32Array, dst: Float32Array, start: number, stride: number, length: number, r: number): void {
  let sum = 0
  let count = 0
  const end = Math.min(r, length - 1)
  for (let k = 0; k <= end; k++) {
    sum += src[start + k * stride]!
    count++
  }
  for (let k = 0; k < length; k++) {
    dst[start + k * stride] = sum / count
    const add = k + r + 1
    const drop = k - r
    if (add < length) {
      sum += src[start + add * stride]!
      count++
    }
    if (drop >= 0) {
      sum -= src[start + drop * stride]!
      count--
    }
  }
}
