import { applyEncoder, describe, type EncoderSettings } from './encode.ts'
import { optimizeLossless } from './lossless.ts'
import { distanceTo, makeReference, type Reference } from './metric.ts'
import { encodeResidualPng, quantizeResiduals } from './png-residual.ts'
import { throwIfAborted, toBytes, yieldToEventLoop, type Encoded } from './run.ts'
import { withMetadataPolicy, type Source } from './source.ts'
import type { EngineParams } from './types.ts'

/**
 * The most distance (src/engine/metric.ts) each encoder family may add, per level. Calibrated with
 * bench/_engine-calibrate.ts so that on ../shared/corpus no `intelligent` pick exceeds butteraugli 2.9
 * (the benchmark's limit is 3.0): each is just below the lowest metric score of any encode that
 * butteraugli judged worse than 2.9. The families need separate limits because the metric does not rank
 * a palette's banding, a JPEG's blocking and residual noise equally harshly. `ultra` allows ~1.4x more,
 * roughly butteraugli 3-5 on the corpus: visible on close inspection, fine at a glance.
 */
export const DISTANCE_LIMITS = {
  intelligent: { jpeg: 0.8, webp: 0.8, palette: 1.0, residual: 1.5, gif: 1.0 },
  ultra: { jpeg: 1.15, webp: 1.15, palette: 1.4, residual: 2.0, gif: 1.4 },
} as const

type Family = keyof (typeof DISTANCE_LIMITS)['intelligent']

/**
 * The qualities searched, exactly the ones the limits were calibrated on: quality does not move the metric
 * smoothly (libimagequant's colour count jumps), so an uncalibrated point in between is a blind spot.
 * Below 50 the savings are small and the risk of visible damage high.
 */
const JPEG_QUALITIES = { steps: [50, 60, 65, 70, 75, 80, 85, 88, 90, 92, 95], guess: 80 }
const WEBP_QUALITIES = JPEG_QUALITIES
const PALETTE_QUALITIES = { steps: [50, 60, 70, 80, 85, 90, 95, 100], guess: 85 }
/**
 * Some photos are hard for any re-encode (a smooth sky over a 4:2:0 JPEG): even the top quality is some
 * distance away. For JPEG/WebP the limit then becomes that floor plus this margin, instead of giving up.
 */
const FLOOR_MARGIN = { intelligent: 1.1, ultra: 1.25 }
/**
 * Residual quantization steps (src/engine/png-residual.ts), gentlest first. Grey images get only the
 * calibrated coarse steps: on dark, smooth grey (moon.png, cell.png) the metric is not monotone between
 * them (step 7 passed where butteraugli said 4.4). Colour images get the finer ladder, which the
 * benchmark's butteraugli run validated on the corpus.
 */
const RESIDUAL_STEPS = { grey: [2, 4, 6, 8, 10, 12, 16], colour: [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16] }
/** Encodes tried per search: with a good first guess, 3-4 bisection probes land within ~3 quality points. */
const MAX_PROBES = 4

/** An encode from the search, with the quality that made it. */
type Probe = Encoded & { quality?: number }

interface Search {
  src: Source
  params: EngineParams
  ref: Reference
  limits: (typeof DISTANCE_LIMITS)['intelligent' | 'ultra']
  floorMargin: number
  signal: AbortSignal | undefined
}

/**
 * `intelligent` / `ultra`: per image, the fewest bytes whose distance to the prepared image stays within
 * the level's limit. JPEG and WebP search quality; PNG searches palette quality, then posterization, then
 * falls back to lossless; GIF keeps its frames and tries cgif's lossy inter-frame optimisation.
 */
export async function optimizeLossy(src: Source, params: EngineParams, signal?: AbortSignal): Promise<Encoded | null> {
  const level = params.compression === 'ultra' ? 'ultra' : 'intelligent'
  const limits = DISTANCE_LIMITS[level]
  const ref = await makeReference(() => src.pipeline(), { width: src.width, height: src.height * (src.meta.pages ?? 1) }, hasAlpha(src))
  const s: Search = { src, params, ref, limits, floorMargin: FLOOR_MARGIN[level], signal }
  switch (src.format) {
    case 'jpeg':
      return searchQuality(s, 'jpeg', JPEG_QUALITIES, (q) => ({ kind: 'jpeg', quality: q, chroma: '4:2:0' }), s.floorMargin)
    case 'webp':
      return searchQuality(s, 'webp', WEBP_QUALITIES, (q) => ({ kind: 'webp', quality: q, effort: 4 }), s.floorMargin)
    case 'png':
      return optimizePng(s)
    case 'gif':
      return optimizeGif(s)
  }
}

function hasAlpha(src: Source): boolean {
  return src.meta.hasAlpha === true
}

async function optimizePng(s: Search): Promise<Encoded | null> {
  const paletteAt = (q: number, compressionLevel: number): EncoderSettings => ({
    kind: 'png-palette',
    quality: q,
    colours: 256,
    dither: 1,
    // sharp's default speed, as calibrated: lower efforts change the palette enough to move butteraugli.
    effort: 7,
    compressionLevel,
  })
  // Probes deflate at level 6 (the pixels, and so the verdict, do not depend on it); a winner gets level 9.
  const palette = await searchQuality(s, 'palette', PALETTE_QUALITIES, (q) => paletteAt(q, 6))
  // Truecolour with quantized prediction residuals: beats a palette on photos, never bands a gradient.
  // Not for palette inputs (their own palette is exact), 16-bit, or when metadata must be kept (the PNG
  // written here carries none).
  const meta = s.src.meta
  const metadataToKeep = s.params.keepExif && Boolean(meta.exif || meta.xmp || meta.iptc || meta.icc)
  const residual =
    !meta.isPalette && !metadataToKeep && meta.depth !== 'ushort' && !s.src.animated
      ? await searchResidual(s)
      : null
  let best = smaller(palette, residual)
  if (best && best === palette && palette.quality !== undefined) {
    const tight = await toBytes(applyEncoder(withMetadataPolicy(s.src.pipeline(), s.src, s.params, false), paletteAt(palette.quality, 9)))
    tight.settings = palette.settings
    best = smaller(best, tight)
  }
  return best ?? optimizeLossless(s.src, s.params, s.signal)
}

function smaller(a: Encoded | null, b: Encoded | null): Encoded | null {
  if (!a || !b) return a ?? b
  return b.data.length < a.data.length ? b : a
}

async function optimizeGif(s: Search): Promise<Encoded | null> {
  let best: Encoded | null = null
  const candidates: EncoderSettings[] = [
    { kind: 'gif', interFrameMaxError: 0, reuse: true, dither: 0 },
    { kind: 'gif', interFrameMaxError: 8, reuse: false, dither: 1 },
  ]
  for (const settings of candidates) {
    const probe = await encodeAndMeasure(s, settings)
    if (probe.distance <= s.limits.gif && (!best || probe.out.data.length < best.data.length)) best = probe.out
  }
  return best
}

/**
 * Bisection over the calibrated qualities for the lowest one within the limit, starting from a guess that
 * is right for most photos. A first miss jumps to the top quality: if even that fails the family is out
 * after two probes (or, with `floorMargin`, the limit becomes the top's distance times the margin).
 * Returns the smallest passing encode, or null.
 */
async function searchQuality(
  s: Search,
  family: Family,
  qualities: { steps: number[]; guess: number },
  settingsFor: (quality: number) => EncoderSettings,
  floorMargin = 0,
): Promise<Probe | null> {
  const steps = qualities.steps
  let lo = 0
  let hi = steps.length - 1
  let i = steps.indexOf(qualities.guess)
  let limit: number = s.limits[family]
  let best: Probe | null = null
  for (let probes = 1; lo <= hi && probes <= MAX_PROBES; probes++) {
    const probe = await encodeAndMeasure(s, settingsFor(steps[i]!))
    if (probes === 2 && !best && i === steps.length - 1) {
      limit = Math.max(limit, probe.distance * floorMargin)
      if (probe.distance > limit) return null
    }
    if (probe.distance <= limit) {
      if (!best || probe.out.data.length < best.data.length) best = probe.out
      hi = i - 1
    } else {
      lo = i + 1
    }
    i = probes === 1 && !best ? steps.length - 1 : (lo + hi) >> 1
  }
  return best
}

async function encodeAndMeasure(s: Search, settings: EncoderSettings): Promise<{ out: Probe; distance: number }> {
  throwIfAborted(s.signal)
  const out: Encoded & { quality?: number } = await toBytes(
    applyEncoder(withMetadataPolicy(s.src.pipeline(), s.src, s.params, false), settings),
  )
  out.settings = describe(settings)
  if ('quality' in settings) out.quality = settings.quality
  const distance = await distanceTo(s.ref, () => s.src.sharp(out.data, { animated: s.src.animated, limitInputPixels: false }))
  await yieldToEventLoop()
  return { out, distance }
}

/** Largest residual step within the limit (measured on the reconstructed pixels: only the winner is deflated). */
async function searchResidual(s: Search): Promise<Encoded | null> {
  // sharp hands out grey as three equal channels: ask for one, a third of the samples to store.
  const grey = s.src.meta.space === 'b-w' || s.src.meta.space === 'grey16'
  const pipeline = grey ? s.src.pipeline().toColourspace('b-w') : s.src.pipeline()
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true })
  const raw = { width: info.width, height: info.height, channels: info.channels }
  const alpha = info.channels === 2 || info.channels === 4
  const steps = grey ? RESIDUAL_STEPS.grey : RESIDUAL_STEPS.colour
  let lo = 0
  let hi = steps.length - 1
  let best: ReturnType<typeof quantizeResiduals> | null = null
  let bestStep = 0
  while (lo <= hi) {
    throwIfAborted(s.signal)
    const mid = (lo + hi) >> 1
    const step = steps[mid]!
    const candidate = quantizeResiduals(data, info.width, info.height, info.channels, alpha, step)
    await yieldToEventLoop()
    const distance = await distanceTo(s.ref, () => s.src.sharp(candidate.pixels, { raw }))
    await yieldToEventLoop()
    if (distance <= s.limits.residual) {
      best = candidate
      bestStep = step
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  if (!best) return null
  const data2 = await encodeResidualPng(best)
  return { data: data2, width: info.width, height: info.height, settings: `png residual step ${bestStep}` }
}
