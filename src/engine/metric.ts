import type { Sharp as SharpInstance } from 'sharp'
import { boxBlur, RowBlur } from './box-blur.ts'
import { coreAvailable, CoreView, type CoreParams } from './metric-core.ts'
import { yieldToEventLoop } from './run.ts'

export { boxBlur } from './box-blur.ts'

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

/** Lab pixels as sharp gives them, interleaved (L, a, b per pixel, `channels` floats apart). */
export interface LabPixels {
  width: number
  height: number
  channels: number
  data: Float32Array
}

/** One background's view of the reference. */
export interface ReferenceView {
  lab: LabImage
  activity: Float32Array
  /** Scratch for the per-pixel scores, kept between measurements of the same image (taken while in use). */
  scores?: Float32Array | null
  /** The WebAssembly core that holds this view (metric-core.ts), and the parameters it measures with. */
  core?: { view: CoreView; params: MetricParams }
}

export interface Reference {
  views: ReferenceView[]
  /** How to turn a candidate into the same views (backgrounds and size). */
  backgrounds: (string | null)[]
  resize: { width: number; height: number } | null
  /** Where the metric looks (1) and where not (0: a tile mosaic's seams); everywhere when absent. */
  mask?: Uint8Array
}

/** What the metric looks at: the pipeline flattened on `background` and shrunk to `resize` when given. */
function viewOf(p: SharpInstance, background: string | null, resize: { width: number; height: number } | null): SharpInstance {
  if (background) p = p.flatten({ background })
  return resize ? p.resize({ width: resize.width, height: resize.height, fit: 'fill', kernel: 'linear' }) : p
}

/** Decode a pipeline into interleaved CIELAB, flattened on `background` and shrunk to `resize` when given. */
async function decodeLab(
  p: SharpInstance,
  background: string | null,
  resize: { width: number; height: number } | null,
  darkGamma: number,
): Promise<LabPixels> {
  const { data, info } = await viewOf(p, background, resize).toColourspace('lab').raw({ depth: 'float' }).toBuffer({ resolveWithObject: true })
  const f = new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4)
  const c = info.channels
  if (darkGamma !== 1) for (let j = 0; j < f.length; j += c) f[j] = darkL(f[j]!, darkGamma)
  return { width: info.width, height: info.height, channels: c, data: f }
}

/** Decode a pipeline into 8-bit sRGB, flattened on `background` and shrunk to `resize` when given (the core's input). */
async function decodeSrgb(
  p: SharpInstance,
  background: string | null,
  resize: { width: number; height: number } | null,
): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  const { data, info } = await viewOf(p, background, resize).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })
  return { data, width: info.width, height: info.height, channels: info.channels }
}

/**
 * The parameters in the WebAssembly core's terms, or null for those it does not implement (a banding
 * term, a dark gamma: calibration experiments) and where it cannot run: the TypeScript below measures
 * those instead.
 */
export function coreParams(params: MetricParams): CoreParams | null {
  if ((params.bandWeight ?? 0) !== 0 || (params.darkGamma ?? 1) !== 1 || !coreAvailable()) return null
  const { chromaWeight, errorRadius, maskRadius, maskFloor, maskSlope, scale } = params
  return { chromaWeight, errorRadius, maskRadius, maskFloor, maskSlope, scale, chromaScale: params.chromaScale ?? 0, chromaRadius: params.chromaRadius ?? errorRadius, poolTop: params.poolTop ?? 0 }
}

/** Decode a pipeline into CIELAB planes, flattened on `background` and shrunk to `resize` when given. */
export async function toLab(
  p: SharpInstance,
  background: string | null,
  resize: { width: number; height: number } | null,
  darkGamma = METRIC_PARAMS.darkGamma ?? 1,
): Promise<LabImage> {
  const { width, height, channels, data } = await decodeLab(p, background, resize, 1)
  const n = width * height
  const L = new Float32Array(n)
  const a = new Float32Array(n)
  const b = new Float32Array(n)
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    L[i] = data[j]!
    a[i] = data[j + 1]!
    b[i] = data[j + 2]!
  }
  return darkenLightness({ width, height, L, a, b }, darkGamma)
}

/** Re-map L* so that dark tones get more room (see `darkGamma`); gamma 1 leaves it as is. */
export function darkenLightness(lab: LabImage, gamma: number): LabImage {
  if (gamma === 1) return lab
  const L = new Float32Array(lab.L.length)
  for (let i = 0; i < L.length; i++) L[i] = darkL(lab.L[i]!, gamma)
  return { ...lab, L }
}

function darkL(L: number, gamma: number): number {
  return 100 * Math.pow(Math.max(0, L) / 100, gamma)
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
  const core = coreParams(params)
  const viewMask = mask && !resize ? mask : undefined
  for (const bg of backgrounds) {
    if (core) {
      const view = await CoreView.create(await decodeSrgb(pipeline(), bg, resize), core, viewMask)
      const lab: LabImage = { width: view.width, height: view.height, L: view.L, a: view.a, b: view.b }
      views.push({ lab, activity: view.activity, core: { view, params } })
    } else {
      const lab = await toLab(pipeline(), bg, resize)
      views.push({ lab, activity: activityMap(lab, params.maskRadius) })
    }
    await yieldToEventLoop()
  }
  return { views, backgrounds, resize, ...(viewMask ? { mask: viewMask } : {}) }
}

/** The distance between the reference and a candidate (encoded bytes). */
export async function distanceTo(
  ref: Reference,
  candidate: () => SharpInstance,
  params: MetricParams = METRIC_PARAMS,
): Promise<number> {
  let worst = 0
  for (const [i, bg] of ref.backgrounds.entries()) {
    const core = ref.views[i]!.core
    if (core?.params === params) {
      worst = Math.max(worst, core.view.distance(await decodeSrgb(candidate(), bg, ref.resize)))
      await yieldToEventLoop()
      continue
    }
    const lab = await decodeLab(candidate(), bg, ref.resize, METRIC_PARAMS.darkGamma ?? 1)
    await yieldToEventLoop()
    const steps = distanceSteps(ref.views[i]!, lab, params, ref.mask)
    let r = steps.next()
    for (; !r.done; r = steps.next()) await yieldToEventLoop()
    worst = Math.max(worst, r.value)
  }
  return worst
}

export function labDistance(ref: ReferenceView, cand: LabImage, params: MetricParams, mask?: Uint8Array): number {
  const { L, a, b } = cand
  const data = new Float32Array(3 * L.length)
  for (let i = 0, j = 0; i < L.length; i++, j += 3) {
    data[j] = L[i]!
    data[j + 1] = a[i]!
    data[j + 2] = b[i]!
  }
  const steps = distanceSteps(ref, { width: cand.width, height: cand.height, channels: 3, data }, params, mask)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/** Pixels handled between two turns of the event loop (a few ms). */
const PIXELS_PER_TURN = 1 << 18

/**
 * The distance, streamed row by row: each row's squared errors go straight into the box blurs
 * (box-blur.ts), each blurred row straight into the scores, so no full-size temporary is made but the
 * scores (kept on the reference view). Yields between slices of rows so that the event loop gets a turn.
 */
function* distanceSteps(ref: ReferenceView, cand: LabPixels, params: MetricParams, mask?: Uint8Array): Generator<void, number> {
  const { lab, activity } = ref
  const { width: w, height: h } = lab
  if (w !== cand.width || h !== cand.height) return Infinity
  const n = w * h
  const scores = ref.scores?.length === n ? ref.scores : new Float32Array(n)
  ref.scores = null
  const chromaScale = params.chromaScale ?? 0
  const bandWeight = params.bandWeight ?? 0
  const errorRadius = params.errorRadius
  const chromaRadius = params.chromaRadius ?? params.errorRadius
  const bandRadius = params.bandRadius ?? 8
  const lookahead = Math.max(0, errorRadius, chromaScale > 0 ? chromaRadius : 0, bandWeight > 0 ? bandRadius : 0) + 1
  const errBlur = new RowBlur(w, h, errorRadius, lookahead)
  const colourBlur = chromaScale > 0 ? new RowBlur(w, h, chromaRadius, lookahead) : null
  const bandBlur = bandWeight > 0 ? new RowBlur(w, h, bandRadius, lookahead) : null
  const errRow = new Float32Array(w)
  const colourRow = new Float32Array(w)
  const bandRow = new Float32Array(w)
  const rowsPerTurn = Math.max(1, Math.floor(PIXELS_PER_TURN / w))
  let counted = n
  if (mask) for (let i = 0; i < n; i++) if (mask[i] === 0) counted--
  let worst = 0
  let put = 0
  for (let y = 0; y < h; y++) {
    for (const need = Math.min(h - 1, y + lookahead); put <= need; put++) {
      differenceRow(lab, cand, put * w, params.chromaWeight, errRow, colourRow, bandBlur ? bandRow : null)
      errBlur.put(put, errRow)
      colourBlur?.put(put, colourRow)
      bandBlur?.put(put, bandRow)
    }
    const rowWorst = scoreRow(
      errBlur.take(y),
      colourBlur ? colourBlur.take(y) : null,
      bandBlur ? bandBlur.take(y) : null,
      activity,
      mask ?? null,
      scores,
      y * w,
      params,
    )
    if (rowWorst > worst) worst = rowWorst
    if ((y + 1) % rowsPerTurn === 0) yield
  }
  const top = params.poolTop ?? 0
  const distance = params.scale * (top > 0 ? topQuantile(scores, worst, (top * counted) / n) : worst)
  ref.scores = scores
  return distance
}

/** One row of differences: the lightness term's squared error, the colour term's, and the signed dL. */
function differenceRow(
  lab: LabImage,
  cand: LabPixels,
  start: number,
  chromaWeight: number,
  err: Float32Array,
  colour: Float32Array,
  band: Float32Array | null,
): void {
  const { L, a: A, b: B } = lab
  const cd = cand.data
  const c = cand.channels
  const w = err.length
  // The same float64 expressions as a per-plane definition, rounded to float32 when stored.
  for (let x = 0, i = start, j = start * c; x < w; x++, i++, j += c) {
    const dL = L[i]! - cd[j]!
    const da = A[i]! - cd[j + 1]!
    const db = B[i]! - cd[j + 2]!
    const ab = da * da + db * db
    err[x] = dL * dL + chromaWeight * ab
    colour[x] = ab
  }
  if (band) for (let x = 0, i = start, j = start * c; x < w; x++, i++, j += c) band[x] = L[i]! - cd[j]!
}

/** One row of masked scores into `scores[start..]`; returns the row's largest. */
function scoreRow(
  pooled: Float32Array,
  colour: Float32Array | null,
  band: Float32Array | null,
  activity: Float32Array,
  mask: Uint8Array | null,
  scores: Float32Array,
  start: number,
  params: MetricParams,
): number {
  const { maskFloor, maskSlope } = params
  const chromaScale = params.chromaScale ?? 0
  const bandWeight = params.bandWeight ?? 0
  const w = pooled.length
  let worst = 0
  for (let x = 0, i = start; x < w; x++, i++) {
    if (mask && mask[i] === 0) {
      scores[i] = 0
      continue
    }
    // Running sums can leave a tiny negative: NaN here would also knock topQuantile off its fast path.
    let e = Math.sqrt(Math.max(0, pooled[x]!))
    if (band) e = Math.max(e, bandWeight * Math.abs(band[x]!))
    if (colour) e = Math.max(e, chromaScale * Math.sqrt(Math.max(0, colour[x]!)))
    const s = e / (maskFloor + maskSlope * activity[i]!)
    scores[i] = s
    if (s > worst) worst = s
  }
  return worst
}

/**
 * The tiers `topQuantile` counts, top first, as the lowest bin of each (of 4096): the top half holds the
 * answer on most measurements, and each further tier costs one more pass.
 */
const TOP_QUANTILE_TIERS = [2048, 256, 0]

/** The score exceeded by a `fraction` of pixels, from a 4096-bin histogram (linear time, no sort). */
function topQuantile(scores: Float32Array, max: number, fraction: number): number {
  if (max <= 0) return 0
  const bins = 4096
  const hist = new Uint32Array(bins)
  const k = (bins - 1) / max
  const wanted = Math.max(1, Math.floor(scores.length * fraction))
  // The wanted share is tiny: the top tier is counted first (a compare per pixel, rarely an increment).
  // When it holds enough pixels the answer is among them, and its counts are complete; else the next tier
  // down is counted. Each tier is complete before it is read, so the answer is the one-pass answer.
  let seen = 0
  let high = bins
  for (const low of TOP_QUANTILE_TIERS) {
    // Under any score whose bin is ≥ low: a plain compare skips the lower tiers' pixels.
    const below = low > 0 ? (0.999 * low) / k : -Infinity
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i]!
      if (s < below) continue
      let v = Math.floor(s * k) | 0
      if (v > bins - 1) v = bins - 1
      if (v >= low && v < high) hist[v]!++
    }
    for (let b = high - 1; b >= low; b--) {
      seen += hist[b]!
      if (seen >= wanted) return (b + 0.5) / k
    }
    high = low
  }
  return 0
}

/** Local mean absolute deviation of L* around its local mean. */
export function activityMap(lab: LabImage, radius: number): Float32Array {
  const dev = boxBlur(lab.L, lab.width, lab.height, radius)
  for (let i = 0; i < dev.length; i++) dev[i] = Math.abs(lab.L[i]! - dev[i]!)
  return boxBlur(dev, lab.width, lab.height, radius)
}
