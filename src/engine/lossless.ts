import type { Sharp as SharpInstance } from 'sharp'
import { applyEncoder, describe, PALETTE_COLOURS, type EncoderSettings } from './encode.ts'
import { stripJpegMetadata } from './jpeg-markers.ts'
import { canonicalPixels, countColours, decodesTo } from './pixels.ts'
import { throwIfAborted, toBytes, type AbortFlag, type Encoded } from './run.ts'
import { mustChange, withMetadataPolicy, type Source } from './source.ts'
import type { EngineParams } from './types.ts'

/** At most this many colours, a palette packs 4 bits or fewer per pixel. */
const PACKED_PALETTE_COLOURS = 16

/**
 * `lossless`: every candidate is decoded again and compared pixel for pixel with the prepared image; only
 * exact ones count. The smallest exact one wins if it beats the input; otherwise the input is returned.
 */
export async function optimizeLossless(src: Source, params: EngineParams, signal?: AbortFlag): Promise<Encoded | null> {
  const change = mustChange(src, params)
  if (src.format === 'jpeg') return losslessJpeg(src, params, change)

  const sixteenBit = src.meta.depth === 'ushort'
  const reference = await canonicalPixels(src.pipeline(), sixteenBit)
  const original = (): SharpInstance => withMetadataPolicy(src.pipeline(), src, params, true)
  // `ifNoneExact`: only worth encoding when no earlier candidate was exact.
  const candidates: { settings: EncoderSettings; from: () => SharpInstance; name?: string; ifNoneExact?: boolean }[] = []
  // A grey image stored as RGB (height, roughness and AO maps often are) as a grey PNG: a third of the
  // samples, so smaller and faster; an exact one makes the truecolour encode pointless. Not when a
  // profile or metadata must follow (a grey PNG cannot carry an RGB profile).
  const grey = src.format === 'png' && !sixteenBit && !params.keepExif && !src.meta.icc ? greyOf(reference) : null
  if (src.format === 'png') {
    if (grey) {
      const raw = { width: reference.width, height: reference.height, channels: grey.channels }
      // sharp writes sRGB unless told: without b-w, one grey band would come out as RGB again.
      const from = (): SharpInstance => src.sharp(grey.data, { raw, limitInputPixels: false }).toColourspace('b-w')
      candidates.push({ settings: { kind: 'png-lossless', palette: false }, from, name: 'png lossless grey' })
    }
    candidates.push({ settings: { kind: 'png-lossless', palette: false }, from: original, ifNoneExact: grey !== null })
    // Beside an exact grey PNG, a palette is one more byte per pixel with no filtering to help it: it wins
    // only with few enough levels to pack below 8 bits (the app's grey maps: 24-54 % larger, 0.4 s each).
    const colours = sixteenBit ? Infinity : countColours(reference.data, PALETTE_COLOURS)
    if (colours <= PALETTE_COLOURS) {
      const ifNoneExact = grey !== null && colours > PACKED_PALETTE_COLOURS
      candidates.push({ settings: { kind: 'png-lossless', palette: true }, from: original, ifNoneExact })
    }
  } else if (src.format === 'gif') {
    candidates.push({ settings: { kind: 'gif', interFrameMaxError: 0, reuse: true, dither: 0 }, from: original })
    candidates.push({ settings: { kind: 'gif', interFrameMaxError: 0, reuse: false, dither: 0 }, from: original })
  } else {
    candidates.push({ settings: { kind: 'webp-lossless' }, from: original })
  }
  let best: Encoded | null = null
  let fallback: Encoded | null = null
  for (const { settings, from, name, ifNoneExact } of candidates) {
    if (ifNoneExact && best) continue
    throwIfAborted(signal)
    const out = await toBytes(applyEncoder(from(), settings))
    out.settings = name ?? describe(settings)
    if (!fallback || out.data.length < fallback.data.length) fallback = out
    const exact = await decodesTo(src.sharp, out.data, reference, { animated: src.animated, sixteenBit })
    if (exact && (!best || out.data.length < best.data.length)) best = out
  }
  if (best && (change || best.data.length < src.input.length)) return best
  // Resizing or CMYK conversion was asked for: the input is not an answer even if no encode is exact.
  if (change) return best ?? fallback
  return null
}

async function losslessJpeg(src: Source, params: EngineParams, change: boolean): Promise<Encoded | null> {
  if (change) {
    // Resizing already changes pixels; encode the result as close to lossless as JPEG gets.
    return toBytes(
      applyEncoder(withMetadataPolicy(src.pipeline(), src, params, true), { kind: 'jpeg', quality: 95, chroma: '4:4:4' }),
    )
  }
  if (params.keepExif) return null
  const stripped = stripJpegMetadata(src.input, src.meta.orientation ?? 1)
  if (!stripped || stripped.length >= src.input.length) return null
  // Belt and braces: the scans were copied verbatim, but prove it by decoding both.
  const sharp = src.sharp
  const reference = await canonicalPixels(sharp(src.input, { limitInputPixels: false }).rotate(), false)
  const candidate = await canonicalPixels(sharp(stripped, { limitInputPixels: false }).rotate(), false)
  if (!candidate.data.equals(reference.data)) return null
  return { data: stripped, width: reference.width, height: reference.height, settings: 'jpeg metadata stripped' }
}

/** The grey samples (plus alpha, unless opaque everywhere) of canonical RGBA pixels whose R, G and B are equal everywhere. */
function greyOf(rgba: { data: Buffer; width: number; height: number }): { data: Uint8Array; channels: 1 | 2 } | null {
  const d = rgba.data
  let opaque = true
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return null
    if (d[i + 3] !== 255) opaque = false
  }
  const channels = opaque ? 1 : 2
  const out = new Uint8Array(rgba.width * rgba.height * channels)
  for (let i = 0, j = 0; i < d.length; i += 4, j += channels) {
    out[j] = d[i]!
    if (!opaque) out[j + 1] = d[i + 3]!
  }
  return { data: out, channels }
}
