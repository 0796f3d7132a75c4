import type { Sharp as SharpInstance } from 'sharp'
import { simulate420 } from './chroma.ts'
import { applyEncoder, describe, PALETTE_COLOURS, paletteIsFull, type EncoderSettings } from './encode.ts'
import { optimizeLossless } from './lossless.ts'
import { distanceTo, makeReference, type Reference } from './metric.ts'
import { encodeResidualPng, quantizeResiduals } from './png-residual.ts'
import { countColours } from './pixels.ts'
import { decodeRaster, fromRaster, hasAlphaChannel, type Raster } from './raster.ts'
import { throwIfAborted, toBytes, yieldToEventLoop, type AbortFlag, type Encoded } from './run.ts'
import { withMetadataPolicy, type Source } from './source.ts'
import { mosaic, planTiles, seamMask, type TilePlan } from './tiles.ts'
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
 * Below 50 the savings are small and the risk of visible damage high. `guess` is probed first.
 *
 * Without `scale`, the search bisects; a first miss tries `retry` (when given), then the top.
 * With `scale` (the encoder's quantizer scale at a quality), the next probe is predicted instead: the
 * distance falls as a power of that scale (see `predictNext`).
 */
interface Qualities {
  steps: number[]
  guess: number
  retry?: number
  scale?: (quality: number) => number
}
/**
 * libjpeg's (and mozjpeg's) quality → quantizer scale, in percent of the base tables. On the 44 JPEGs of
 * the large app, the wide corpus and ../shared/corpus, the metric's distance at quality q over its
 * distance at 80 was (scale(q) / scale(80))^k with k's median 0.48 (p10 0.25, p90 0.77).
 */
const jpegScale = (q: number): number => (q < 50 ? 5000 / q : 200 - 2 * q)
const JPEG_QUALITIES: Qualities = { steps: [50, 60, 65, 70, 75, 80, 85, 88, 90, 92, 95], guess: 80, scale: jpegScale }
/** WebP's quality is not a quantizer scale libwebp documents: bisection, with a retry at 88 after a miss at 80. */
const WEBP_QUALITIES: Qualities = { steps: JPEG_QUALITIES.steps, guess: 80, retry: 88 }
/** The power `predictNext` assumes until two probes measure it, and the least it believes (a flat curve). */
const SCALE_POWER = { assumed: 0.5, least: 0.2 }
/**
 * Palette picks are bimodal (on 67 PNGs of the large app, the wide corpus and the corpus: 20 at 50, 11 at
 * 100, 15 none). A first guess of 95 settles a q100 pick in two probes (95 misses, 100 passes) where 90
 * took three. Replayed over every calibrated quality of the 65 truecolour ones: the same picks as an
 * exhaustive search, 2.72 probes per image (90: 2.77; 85: 2.98), 4 % less encode time than 90 and 11 %
 * less than 85 (libimagequant works hardest at low qualities, so guesses below 90 cost more).
 */
export const PALETTE_QUALITIES: Qualities = { steps: [50, 60, 70, 80, 85, 90, 95, 100], guess: 95 }
/** The palette encode at `quality`, as the limits were calibrated (bench/_palette-dither.ts compares dither 0). */
export const paletteAt = (quality: number): Extract<EncoderSettings, { kind: 'png-palette' }> => ({
  kind: 'png-palette',
  quality,
  colours: PALETTE_COLOURS,
  dither: 1,
  // sharp's default speed, as calibrated: lower efforts change the palette enough to move butteraugli.
  effort: 7,
  compressionLevel: 9,
})
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
/**
 * On a smooth image (most of it flat: a gradient wallpaper) residual noise shows far more than the metric
 * says: on the tune half of the wide corpus, step 5 passed the residual limit (metric 1.17–1.44) where
 * butteraugli said 3.25–4.81 (warty-final, calla, goldfish-soft-alpha, gradient-radial), while step 3
 * measured 0.60–0.72 and butteraugli 1.62–2.32. Such images get this share of the residual limit. A photo
 * has 2–10 % of its pixels this flat; those four have 91–100 %.
 */
const SMOOTH_RESIDUAL_SHARE = 2 / 3
/** Local activity (L*) below which a pixel counts as flat. */
const FLAT_ACTIVITY = 0.25
/** The share of flat pixels from which an image counts as smooth (see SMOOTH_RESIDUAL_SHARE). */
const SMOOTH_SHARE = 0.5
/**
 * Flat vector art: nearly all of it flat (photos: 2–10 %, screenshots 10–65 %, the art 91–97 %) in few
 * distinct colours (photos and gradients: tens of thousands; the art 500–4,800). A palette below q95
 * drops the in-between colours of its anti-aliased edges, and every edge becomes a staircase that the
 * metric cannot see (its error grows with the edge's contrast, and so does the masking): butteraugli on
 * the held-back desert-card-alpha.png, palette q60 4.32, q80 4.58, q90 2.92, q95 2.17, q100 0.52, where
 * the metric passed them all. On such an image the palette search starts at `paletteFloor` (ultra keeps
 * q90, within its looser bound).
 */
const FLAT_ART = { share: 0.9, colours: 8192, paletteFloor: { intelligent: 95, ultra: 90 } }
/** Encodes tried per search: with a good first guess, 3-4 bisection probes land within ~3 quality points. */
const MAX_PROBES = 4

/**
 * An encode from the search, with the quality (or residual step) that made it. `ceiling`: every higher
 * quality encodes exactly the same (a full palette, see `paletteIsFull`).
 */
type Probe = Encoded & { quality?: number; ceiling?: boolean }

/**
 * How much distance 4:2:0 subsampling alone may add (src/engine/chroma.ts), as a share of the JPEG limit,
 * before the search keeps 4:4:4: beyond it, the rest of the budget is too small for any quality to pass.
 */
const SUBSAMPLING_SHARE = 0.85
/**
 * The whole-image half of the full-size check runs on a copy shrunk to this size: the tiles already judged
 * the pixel-scale damage at full resolution; this half catches what lies outside them (a banded sky, a
 * colour shift), which shows at any scale. It is also the costliest step left, so it stays small.
 */
const WHOLE_CHECK_PIXELS = 600_000
/**
 * The residual writer holds three copies of the pixels (decoded, reconstructed, filtered) in JS memory:
 * above this size only the palette (libvips, streamed) is tried, so that two workers on the largest
 * accepted images stay within the bound in src/engine/README.md.
 */
const RESIDUAL_MAX_PIXELS = 40_000_000
/** Full-size encodes tried after a tile search whose pick fails the full-size check (each one step up). */
const FINAL_ATTEMPTS = 3

/**
 * One image being searched. `probe` is what the search encodes: a mosaic of full-resolution tiles for
 * large images (src/engine/tiles.ts), or the whole image. When it is a mosaic, the pick is encoded once at
 * full size and checked against both the tiles and the whole image (shrunk to the metric's size).
 */
interface Search {
  src: Source
  params: EngineParams
  limits: (typeof DISTANCE_LIMITS)['intelligent' | 'ultra']
  floorMargin: number
  signal: AbortFlag | undefined
  /** The decoded image; released (null) once a full-size encode no longer needs it, to bound memory. */
  raster: Raster | null
  plan: TilePlan | null
  probe: Raster
  probeRef: Reference
  /** The whole image, for the full-size check (only with a plan). */
  fullRef: Reference | null
  /** Decodes the image again after `raster` was released. */
  decode: () => Promise<Raster>
  /** keep_exif / a kept CMYK profile: the final encode starts again from the input, which carries them. */
  fromSource: boolean
  /** The residual family's limit for this image (tighter on a smooth one, see SMOOTH_RESIDUAL_SHARE). */
  residualLimit: number
  /** The palette qualities searched (from the floor up on flat art, see FLAT_ART). */
  palette: Qualities
}

/**
 * `intelligent` / `ultra`: per image, the fewest bytes whose distance to the prepared image stays within
 * the level's limit. JPEG and WebP search quality (and JPEG its chroma subsampling); PNG searches palette
 * quality and residual steps, then falls back to lossless; GIF keeps its frames and tries cgif's lossy
 * inter-frame optimisation.
 */
export async function optimizeLossy(src: Source, params: EngineParams, signal?: AbortFlag): Promise<Encoded | null> {
  const level = params.compression === 'ultra' ? 'ultra' : 'intelligent'
  const limits = DISTANCE_LIMITS[level]
  if (src.format === 'gif' || src.animated) return optimizeAnimated(src, params, limits, signal)
  const grey = src.meta.space === 'b-w' || src.meta.space === 'grey16'
  // The search measures sRGB (or grey) pixels, also for a CMYK image that stays CMYK.
  const decode = (): Promise<Raster> => decodeRaster(src.pipeline().toColourspace(grey ? 'b-w' : 'srgb'))
  const raster = await decode()
  throwIfAborted(signal)
  const plan = planTiles(raster)
  const probe = plan ? mosaic(raster, plan) : raster
  const alpha = hasAlphaChannel(raster)
  const probeRef = await makeReference(() => fromRaster(src.sharp, probe), probe, alpha, undefined, plan ? seamMask(plan) : undefined)
  const fullRef = plan ? await makeReference(() => fromRaster(src.sharp, raster), raster, alpha, undefined, undefined, WHOLE_CHECK_PIXELS) : null
  const fromSource = params.keepExif || (src.isCmyk && !params.cmykToRgb)
  // Judged on the whole image, not on a tile mosaic, which over-represents smooth cells on purpose.
  const flat = src.format === 'png' ? flatShare(fullRef ?? probeRef) : 0
  const residual = flat >= SMOOTH_SHARE ? limits.residual * SMOOTH_RESIDUAL_SHARE : limits.residual
  const palette = flat >= FLAT_ART.share && isFewColours(raster) ? paletteFrom(FLAT_ART.paletteFloor[level]) : PALETTE_QUALITIES
  const s: Search = { src, params, limits, floorMargin: FLOOR_MARGIN[level], signal, raster, plan, probe, probeRef, fullRef, decode, fromSource, residualLimit: residual, palette }
  switch (src.format) {
    case 'jpeg': {
      const jpegAt = (chroma: '4:2:0' | '4:4:4') => (q: number): EncoderSettings => ({ kind: 'jpeg', quality: q, chroma })
      const chroma = await chooseSubsampling(s)
      // Sources that need 4:4:4 are mostly saved at high quality with fine colour detail: start higher.
      if (chroma === '4:4:4') return searchEncoder(s, 'jpeg', { ...JPEG_QUALITIES, guess: 90 }, jpegAt('4:4:4'), s.floorMargin)
      // 4:2:0 that passes only with the floor's extra margin is worse than 4:4:4 within the plain limit.
      const subsampled = await searchProbes(s, 'jpeg', JPEG_QUALITIES, jpegAt('4:2:0'), s.floorMargin)
      if (!subsampled || subsampled.limit > s.limits.jpeg) {
        const full = await searchProbes(s, 'jpeg', JPEG_QUALITIES, jpegAt('4:4:4'))
        if (full) return finish(s, 'jpeg', JPEG_QUALITIES, jpegAt('4:4:4'), full)
      }
      return subsampled ? finish(s, 'jpeg', JPEG_QUALITIES, jpegAt('4:2:0'), subsampled) : null
    }
    case 'webp':
      return searchEncoder(s, 'webp', WEBP_QUALITIES, (q) => ({ kind: 'webp', quality: q, effort: 4 }), s.floorMargin)
    case 'png':
      return optimizePng(s)
  }
}

/** 4:4:4 when subsampling alone would spend too much of the JPEG budget (see `simulate420`). */
async function chooseSubsampling(s: Search): Promise<'4:2:0' | '4:4:4'> {
  // A 4:2:0 source has no full-resolution colour left to lose.
  if (s.probe.channels < 3 || s.src.meta.chromaSubsampling?.startsWith('4:2:0')) return '4:2:0'
  const damage = await distanceTo(s.probeRef, () => fromRaster(s.src.sharp, simulate420(s.probe)))
  return damage > SUBSAMPLING_SHARE * s.limits.jpeg ? '4:4:4' : '4:2:0'
}

async function optimizePng(s: Search): Promise<Encoded | null> {
  // Truecolour with quantized prediction residuals: beats a palette on photos, never bands a gradient.
  // Not for palette inputs (their own palette is exact), or when metadata must be kept (the PNG written
  // here carries none).
  const meta = s.src.meta
  const metadataToKeep = s.params.keepExif && Boolean(meta.exif || meta.xmp || meta.iptc || meta.icc)
  const residualAllowed = !meta.isPalette && !metadataToKeep && !s.src.isCmyk && s.raster!.width * s.raster!.height <= RESIDUAL_MAX_PIXELS
  if (!s.plan) {
    const palette = await searchProbes(s, 'palette', s.palette, paletteAt)
    const residual = residualAllowed ? await searchResidual(s, palette?.probe.data.length) : null
    let best = smaller(palette?.probe ?? null, residual?.out ?? null)
    // The palette's pick goes through finish() as every search's does (encoded again when metadata must follow).
    if (palette && best === palette.probe) best = await finish(s, 'palette', s.palette, paletteAt, palette)
    return best ?? optimizeLossless(s.src, s.params, s.signal)
  }
  // Tiles: both families are searched on the mosaic; the one smaller there is made at full size first.
  const palette = await searchProbes(s, 'palette', s.palette, paletteAt)
  const residual = residualAllowed ? await searchResidual(s, palette?.probe.data.length) : null
  const tries: (() => Promise<Encoded | null>)[] = []
  if (palette) tries.push(() => finalize(s, 'palette', s.palette, paletteAt, palette))
  if (residual) tries.push(() => finalResidual(s, residual.step))
  if (palette && residual && residual.out.data.length < palette.probe.data.length) tries.reverse()
  // Residuals skipped as larger than the palette are still better than lossless if the palette misses.
  if (palette && !residual && residualAllowed) {
    tries.push(async () => {
      const found = await searchResidual(s)
      return found ? finalResidual(s, found.step) : null
    })
  }
  for (const attempt of tries) {
    const out = await attempt()
    if (out) return out
  }
  return optimizeLossless(s.src, s.params, s.signal)
}

function smaller(a: Encoded | null, b: Encoded | null): Encoded | null {
  if (!a || !b) return a ?? b
  return b.data.length < a.data.length ? b : a
}

/** GIF and animated WebP: every frame kept, measured on the stacked frames (no tiles). */
async function optimizeAnimated(
  src: Source,
  params: EngineParams,
  limits: Search['limits'],
  signal: AbortFlag | undefined,
): Promise<Encoded | null> {
  const ref = await makeReference(() => src.pipeline(), { width: src.width, height: src.height * (src.meta.pages ?? 1) }, src.meta.hasAlpha === true)
  const candidates: EncoderSettings[] =
    src.format === 'gif'
      ? [
          { kind: 'gif', interFrameMaxError: 0, reuse: true, dither: 0 },
          { kind: 'gif', interFrameMaxError: 8, reuse: false, dither: 1 },
        ]
      : [85, 75].map((quality) => ({ kind: 'webp', quality, effort: 4 }))
  const limit = src.format === 'gif' ? limits.gif : limits.webp
  let best: Encoded | null = null
  for (const settings of candidates) {
    throwIfAborted(signal)
    const out = await toBytes(applyEncoder(withMetadataPolicy(src.pipeline(), src, params, false), settings))
    out.settings = describe(settings)
    const distance = await distanceTo(ref, () => src.sharp(out.data, { animated: true, limitInputPixels: false }))
    await yieldToEventLoop()
    if (distance <= limit && (!best || out.data.length < best.data.length)) best = out
  }
  return best
}

/** The search on the probe, then (with tiles) the full-size encode of its pick. */
async function searchEncoder(
  s: Search,
  family: Family,
  qualities: Qualities,
  settingsFor: (quality: number) => EncoderSettings,
  floorMargin = 0,
): Promise<Encoded | null> {
  const found = await searchProbes(s, family, qualities, settingsFor, floorMargin)
  return found ? finish(s, family, qualities, settingsFor, found) : null
}

/** A search's pick as the answer: made at full size and checked when the search ran on tiles. */
async function finish(
  s: Search,
  family: Family,
  qualities: { steps: number[] },
  settingsFor: (quality: number) => EncoderSettings,
  found: { probe: Probe; limit: number },
): Promise<Encoded | null> {
  if (s.plan) return finalize(s, family, qualities, settingsFor, found)
  const settings = settingsFor(found.probe.quality!)
  // A probe made with cheaper settings than the final (a JPEG's, without scan optimisation: the same
  // pixels, 0.5-15 % more bytes on the large app's 800 px thumbnails) is encoded again for real.
  return s.fromSource || probeSettings(settings) !== settings ? encodeFull(s, settings) : found.probe
}

/** What a search probe encodes with: a JPEG skips mozjpeg's scan optimisation (see `applyEncoder`). */
function probeSettings(settings: EncoderSettings): EncoderSettings {
  return settings.kind === 'jpeg' ? { ...settings, probe: true } : settings
}

/**
 * Bisection over the calibrated qualities for the lowest one within the limit, starting from a guess that
 * is right for most photos. A first miss tries `retry`, then the top quality: if even the top fails the
 * family is out (or, with `floorMargin`, the limit becomes the top's distance times the margin).
 * Returns the smallest passing probe and the limit it passed, or null.
 */
async function searchProbes(
  s: Search,
  family: Family,
  qualities: Qualities,
  settingsFor: (quality: number) => EncoderSettings,
  floorMargin = 0,
): Promise<{ probe: Probe; limit: number } | null> {
  const steps = qualities.steps
  const top = steps.length - 1
  const retry = qualities.retry === undefined ? top : steps.indexOf(qualities.retry)
  let lo = 0
  let hi = top
  let i = steps.indexOf(qualities.guess)
  let limit: number = s.limits[family]
  let best: Probe | null = null
  const measured: Measured[] = []
  for (let probes = 1; lo <= hi && probes <= MAX_PROBES; probes++) {
    const probe = await encodeAndMeasure(s, settingsFor(steps[i]!))
    measured.push({ quality: steps[i]!, distance: probe.distance })
    if (!best && i === top) {
      // Only a measured floor raises the limit: a candidate the metric could not compare (Infinity) misses.
      if (Number.isFinite(probe.distance)) limit = Math.max(limit, probe.distance * floorMargin)
      if (probe.distance > limit) return null
    }
    if (probe.distance <= limit) {
      if (!best || probe.out.data.length < best.data.length) best = probe.out
      hi = i - 1
    } else {
      // A miss at the ceiling: no higher quality can pass either (a photo in a palette).
      lo = probe.out.ceiling ? hi + 1 : i + 1
    }
    if (lo > hi) break
    if (qualities.scale) i = predictNext(steps, lo, hi, measured, limit, qualities.scale)
    else i = best ? (lo + hi) >> 1 : probes === 1 && retry > i ? retry : top
  }
  return best ? { probe: best, limit } : null
}

interface Measured {
  quality: number
  distance: number
}

/**
 * The lowest quality in steps[lo..hi] predicted to pass: the distance is taken to fall as a power of the
 * quantizer scale, fitted through the two probes closest to the limit (or the assumed power through the
 * first one). On the 44 JPEGs behind `jpegScale` this lands on the same pick as an exhaustive search
 * with 2.8 probes per image where bisection took 3.6, and finds the lowest passing quality in five cases
 * where bisection ran out of probes first.
 */
function predictNext(steps: number[], lo: number, hi: number, measured: Measured[], limit: number, scale: (q: number) => number): number {
  const [a, b] = [...measured].sort((x, y) => Math.abs(Math.log(x.distance / limit)) - Math.abs(Math.log(y.distance / limit)))
  let power = SCALE_POWER.assumed
  if (b && a!.distance > 0 && b.distance > 0 && a!.distance !== b.distance) {
    power = Math.max(SCALE_POWER.least, Math.log(a!.distance / b.distance) / Math.log(scale(a!.quality) / scale(b.quality)))
  }
  // A lower scale is a higher quality: the first step whose scale is at or below the predicted one.
  const target = a!.distance > 0 ? scale(a!.quality) * (limit / a!.distance) ** (1 / power) : Infinity
  for (let i = lo; i <= hi; i++) if (scale(steps[i]!) <= target) return i
  return hi
}

/** Whether every higher quality would encode exactly these bytes: a palette that used all its colours. */
function atCeiling(data: Uint8Array, settings: EncoderSettings): boolean {
  return settings.kind === 'png-palette' && paletteIsFull(data, settings.colours)
}

async function encodeAndMeasure(s: Search, settings: EncoderSettings): Promise<{ out: Probe; distance: number }> {
  throwIfAborted(s.signal)
  const out: Probe = await toBytes(applyEncoder(fromRaster(s.src.sharp, s.probe), probeSettings(settings)))
  out.settings = describe(settings)
  if ('quality' in settings) out.quality = settings.quality
  out.ceiling = atCeiling(out.data, settings)
  const distance = await distanceTo(s.probeRef, () => s.src.sharp(out.data, { limitInputPixels: false }))
  await yieldToEventLoop()
  return { out, distance }
}

/** The whole image at `settings`, from the decoded pixels (or from the input when metadata must follow). */
async function encodeFull(s: Search, settings: EncoderSettings): Promise<Encoded> {
  throwIfAborted(s.signal)
  const p = s.fromSource || !s.raster ? withMetadataPolicy(s.src.pipeline(), s.src, s.params, false) : fromRaster(s.src.sharp, s.raster)
  const out = await toBytes(applyEncoder(p, settings))
  out.settings = describe(settings)
  return out
}

/**
 * The tile search's pick, made at full size and checked on the same tiles cut from it and on the whole
 * image; a miss tries the next calibrated quality up.
 */
async function finalize(
  s: Search,
  family: Family,
  qualities: { steps: number[] },
  settingsFor: (quality: number) => EncoderSettings,
  found: { probe: Probe; limit: number },
): Promise<Encoded | null> {
  const start = qualities.steps.indexOf(found.probe.quality!)
  const layout = { channels: s.raster!.channels }
  for (let i = start; i < qualities.steps.length && i < start + FINAL_ATTEMPTS; i++) {
    const settings = settingsFor(qualities.steps[i]!)
    const out = await encodeFull(s, settings)
    // Both references are made: the decoded input can go before the output is decoded (a rare retry
    // decodes the input again), so that two full-size rasters are never held at once.
    s.raster = null
    const decoded = await decodeRaster(alignTo(layout, s.src.sharp(out.data, { limitInputPixels: false })))
    const d = await fullDistance(s, decoded)
    if (d <= found.limit) return out
    // At the floor (even the top quality is far from the source), the top quality is the answer.
    if (i === qualities.steps.length - 1 && found.limit > s.limits[family]) return out
    // At the ceiling at full size: the qualities above encode the same pixels, and would miss alike.
    if (atCeiling(out.data, settings)) return null
  }
  return null
}

/** Decode a candidate into the reference raster's layout (grey or sRGB, with alpha or not). */
function alignTo(r: { channels: number }, p: SharpInstance): SharpInstance {
  p = p.toColourspace(r.channels <= 2 ? 'b-w' : 'srgb')
  return r.channels === 2 || r.channels === 4 ? p.ensureAlpha() : p.removeAlpha()
}

/** The worse of the tile check and the whole-image check. */
async function fullDistance(s: Search, candidate: Raster): Promise<number> {
  const sharp = s.src.sharp
  const tiles = await distanceTo(s.probeRef, () => fromRaster(sharp, mosaic(candidate, s.plan!)))
  if (tiles === Infinity) return tiles
  return Math.max(tiles, await distanceTo(s.fullRef!, () => fromRaster(sharp, candidate)))
}

/**
 * Largest residual step within the limit on the probe (measured on the reconstructed pixels). With `beat`
 * (the palette's bytes on the same probe), the search is skipped when even the coarsest step is no smaller:
 * finer steps only grow, so residuals cannot win. That is most screenshots and flat art, where a palette
 * is half the size, and the metric's probes there cost more than the palette search itself.
 */
async function searchResidual(s: Search, beat?: number): Promise<{ out: Encoded; step: number } | null> {
  const r = s.probe
  const steps = r.channels <= 2 ? RESIDUAL_STEPS.grey : RESIDUAL_STEPS.colour
  if (beat !== undefined) {
    const coarsest = quantizeResiduals(r.data, r.width, r.height, r.channels, hasAlphaChannel(r), steps.at(-1)!)
    if ((await encodeResidualPng(coarsest)).length >= beat) return null
  }
  let lo = 0
  let hi = steps.length - 1
  let best: ReturnType<typeof quantizeResiduals> | null = null
  let bestStep = 0
  while (lo <= hi) {
    throwIfAborted(s.signal)
    const mid = (lo + hi) >> 1
    const step = steps[mid]!
    const candidate = quantizeResiduals(r.data, r.width, r.height, r.channels, hasAlphaChannel(r), step)
    await yieldToEventLoop()
    const distance = await distanceTo(s.probeRef, () => fromRaster(s.src.sharp, { ...r, data: candidate.pixels }))
    await yieldToEventLoop()
    if (distance <= s.residualLimit) {
      best = candidate
      bestStep = step
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  if (!best) return null
  let data = await encodeResidualPng(best)
  // Coarser is not always smaller: on a gradient an odd step packs far tighter than the even one above
  // it (step 3 was 29-57 % smaller than step 4 on the tune half's gradients), so the next finer step
  // is tried too, and taken when it is smaller and within the limit.
  const finer = steps[steps.indexOf(bestStep) - 1]
  if (finer !== undefined) {
    const candidate = quantizeResiduals(r.data, r.width, r.height, r.channels, hasAlphaChannel(r), finer)
    const finerData = await encodeResidualPng(candidate)
    if (finerData.length < data.length) {
      const distance = await distanceTo(s.probeRef, () => fromRaster(s.src.sharp, { ...r, data: candidate.pixels }))
      if (distance <= s.residualLimit) {
        data = finerData
        bestStep = finer
      }
    }
  }
  return { out: { data, width: r.width, height: r.height, settings: `png residual step ${bestStep}` }, step: bestStep }
}

/** The residual pick at full size; a miss tries the next finer step. */
async function finalResidual(s: Search, step: number): Promise<Encoded | null> {
  const r = s.raster ?? (await s.decode())
  const steps = r.channels <= 2 ? RESIDUAL_STEPS.grey : RESIDUAL_STEPS.colour
  const start = steps.indexOf(step)
  for (let i = start; i >= 0 && i > start - FINAL_ATTEMPTS; i--) {
    throwIfAborted(s.signal)
    const candidate = quantizeResiduals(r.data, r.width, r.height, r.channels, hasAlphaChannel(r), steps[i]!)
    await yieldToEventLoop()
    if ((await fullDistance(s, { ...r, data: candidate.pixels })) <= s.residualLimit) {
      return { data: await encodeResidualPng(candidate), width: r.width, height: r.height, settings: `png residual step ${steps[i]}` }
    }
  }
  return null
}

/** The share of the image's pixels that are flat (local activity under FLAT_ACTIVITY). */
function flatShare(whole: Reference): number {
  const activity = whole.views[0]!.activity
  let flat = 0
  for (let i = 0; i < activity.length; i++) if (activity[i]! < FLAT_ACTIVITY) flat++
  return flat / activity.length
}

/** A colour image with at most FLAT_ART.colours distinct pixel values. */
function isFewColours(r: Raster): boolean {
  return r.channels >= 3 && countColours(r.data, FLAT_ART.colours, r.channels) <= FLAT_ART.colours
}

/** The palette qualities from `floor` up, the first guess the lowest of them. */
function paletteFrom(floor: number): Qualities {
  const steps = PALETTE_QUALITIES.steps.filter((q) => q >= floor)
  return { ...PALETTE_QUALITIES, steps, guess: steps[0]! }
}
