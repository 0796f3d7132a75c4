import type { Sharp as SharpInstance } from 'sharp'
import { applyEncoder, describe, type EncoderSettings } from './encode.ts'
import { optimizeLossless } from './lossless.ts'
import { distanceTo, makeReference, type Reference } from './metric.ts'
import { posterize } from './posterize.ts'
import { throwIfAborted, toBytes, yieldToEventLoop, type Encoded } from './run.ts'
import { withMetadataPolicy, type Source } from './source.ts'
import type { EngineParams } from './types.ts'

/**
 * The most distance (src/engine/metric.ts) each encoder family may add, per level. Calibrated with
 * bench/_engine-calibrate.ts so that on ../shared/corpus no `intelligent` pick exceeds butteraugli 2.9
 * (the benchmark's limit is 3.0): each is just below the lowest metric score of any encode that
 * butteraugli judged worse than 2.9. The families need separate limits because the metric does not rank
 * a palette's banding, a JPEG's blocking and posterization equally harshly. `ultra` allows 1.6x more,
 * roughly butteraugli 4: visible on close inspection, fine at a glance.
 */
export const DISTANCE_LIMITS = {
  intelligent: { jpeg: 0.8, webp: 0.8, palette: 1.0, posterize: 1.09, gif: 1.0 },
  ultra: { jpeg: 1.3, webp: 1.3, palette: 1.6, posterize: 1.75, gif: 1.6 },
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
/** Posterize steps, gentlest first. */
const POSTERIZE_STEPS = [2, 3, 4, 6, 8]
/** Encodes tried per search: with a good first guess, 3-4 bisection probes land within ~3 quality points. */
const MAX_PROBES = 4

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
  const palette = await searchQuality(s, 'palette', PALETTE_QUALITIES, (q) => ({
    kind: 'png-palette',
    quality: q,
    colours: 256,
    dither: 1,
    effort: 7,
  }))
  if (palette) return palette
  // No palette looks close enough: keep truecolour, drop only the least significant bits.
  // A palette input reaches here only if even its own colours fail, which cannot happen; skip the work.
  if (!s.src.meta.isPalette && !s.params.keepExif && s.src.meta.depth !== 'ushort') {
    const poster = await searchPosterize(s)
    if (poster) return poster
  }
  return optimizeLossless(s.src, s.params, s.signal)
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
): Promise<Encoded | null> {
  const steps = qualities.steps
  let lo = 0
  let hi = steps.length - 1
  let i = steps.indexOf(qualities.guess)
  let limit: number = s.limits[family]
  let best: Encoded | null = null
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

async function encodeAndMeasure(s: Search, settings: EncoderSettings): Promise<{ out: Encoded; distance: number }> {
  throwIfAborted(s.signal)
  const out = await toBytes(applyEncoder(withMetadataPolicy(s.src.pipeline(), s.src, s.params, false), settings))
  out.settings = describe(settings)
  const distance = await distanceTo(s.ref, () => s.src.sharp(out.data, { animated: s.src.animated, limitInputPixels: false }))
  await yieldToEventLoop()
  return { out, distance }
}

/** Largest posterize step within the limit (measured on raw pixels: only the winner is encoded). */
async function searchPosterize(s: Search): Promise<Encoded | null> {
  const { data, info } = await s.src.pipeline().raw().toBuffer({ resolveWithObject: true })
  const raw = { width: info.width, height: info.height, channels: info.channels }
  const alpha = info.channels === 2 || info.channels === 4
  const fromRaw = (pixels: Uint8Array): SharpInstance => s.src.sharp(pixels, { raw })
  let lo = 0
  let hi = POSTERIZE_STEPS.length - 1
  let bestStep = 0
  while (lo <= hi) {
    throwIfAborted(s.signal)
    const mid = (lo + hi) >> 1
    const step = POSTERIZE_STEPS[mid]!
    const pixels = posterize(data, info.channels, alpha, step)
    const distance = await distanceTo(s.ref, () => fromRaw(pixels))
    await yieldToEventLoop()
    if (distance <= s.limits.posterize) {
      bestStep = step
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  if (!bestStep) return null
  const out = await toBytes(
    fromRaw(posterize(data, info.channels, alpha, bestStep)).png({
      compressionLevel: 9,
      adaptiveFiltering: true,
      palette: false,
    }),
  )
  out.settings = `png posterize ${bestStep}`
  return out
}
