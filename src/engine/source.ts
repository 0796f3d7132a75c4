import type { Metadata, Sharp as SharpInstance, SharpOptions } from 'sharp'
import { EngineError, toEngineError } from './errors.ts'
import type { Sharp } from './load-sharp.ts'
import type { EngineParams, ImageFormat } from './types.ts'

/** ~100 megapixels: a 10000x10000 photo passes, a 50000x50000 "bomb" does not. */
export const DEFAULT_LIMIT_INPUT_PIXELS = 100_000_000

/** A checked input and a way to build the prepared pipeline (oriented, resized, colour-converted). */
export interface Source {
  sharp: Sharp
  input: Uint8Array
  format: ImageFormat
  meta: Metadata
  /** More than one frame (animated GIF/WebP): all frames are kept. */
  animated: boolean
  /** Fresh pipeline: decode → auto-orient → CMYK→sRGB → fit inside the box. Metadata not yet decided. */
  pipeline(): SharpInstance
  /** Output size after orientation and resizing. */
  width: number
  height: number
  isCmyk: boolean
}

export async function openSource(
  sharp: Sharp,
  input: Uint8Array,
  format: ImageFormat,
  params: EngineParams,
  limitInputPixels: number,
): Promise<Source> {
  const animatedFormat = format === 'gif' || format === 'webp'
  // failOn 'warning': the strictest setting. A damaged file is refused, never half-decoded into grey.
  const options: SharpOptions = { failOn: 'warning', limitInputPixels, animated: animatedFormat }
  let meta: Metadata
  try {
    // Header only: the pixel limit is checked below, with a message that says what was declared.
    meta = await sharp(input, { ...options, limitInputPixels: false }).metadata()
  } catch (err) {
    throw toEngineError(err, format)
  }
  const frameWidth = meta.width ?? 0
  const frameHeight = meta.pageHeight ?? meta.height ?? 0
  const pages = meta.pages ?? 1
  if (frameWidth <= 0 || frameHeight <= 0) {
    throw new EngineError('ENGINE_CORRUPT_INPUT', `The ${format} header declares no size; the original is kept.`)
  }
  // metadata() reads the header only; checking here refuses a bomb before a single pixel is decoded.
  if (frameWidth * frameHeight * pages > limitInputPixels) {
    throw new EngineError(
      'ENGINE_TOO_LARGE',
      `The ${format} image declares ${frameWidth}x${frameHeight}` +
        (pages > 1 ? ` x ${pages} frames` : '') +
        ` pixels, more than the limit of ${limitInputPixels} (decompression bomb?); the original is kept.`,
    )
  }
  const animated = animatedFormat && pages > 1
  const isCmyk = meta.space === 'cmyk'
  // Orientations 5-8 swap width and height.
  const swapped = (meta.orientation ?? 1) >= 5
  const shownWidth = swapped ? frameHeight : frameWidth
  const shownHeight = swapped ? frameWidth : frameHeight
  const box = fitInside(shownWidth, shownHeight, params.maxWidth, params.maxHeight)

  const pipeline = (): SharpInstance => {
    let p = sharp(input, options).rotate()
    if (box.resize) p = p.resize({ width: box.width, height: box.height, fit: 'inside', withoutEnlargement: true })
    if (isCmyk) p = params.cmykToRgb ? p.toColourspace('srgb') : p.toColourspace('cmyk')
    return p
  }
  return { sharp, input, format, meta, animated, pipeline, width: box.width, height: box.height, isCmyk }
}

/** `max_width`/`max_height`: fit inside the box, keep the aspect ratio, never enlarge; 0 = no limit. */
export function fitInside(
  width: number,
  height: number,
  maxWidth: number,
  maxHeight: number,
): { width: number; height: number; resize: boolean } {
  const sx = maxWidth > 0 ? maxWidth / width : Infinity
  const sy = maxHeight > 0 ? maxHeight / height : Infinity
  const scale = Math.min(sx, sy, 1)
  if (scale >= 1) return { width, height, resize: false }
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
    resize: true,
  }
}

/**
 * What the output keeps. `keep_exif=0` strips EXIF/IPTC/XMP (after auto-orienting, so nothing turns
 * sideways) and converts to sRGB; the lossless level keeps an ICC profile so that no pixel value changes.
 */
export function withMetadataPolicy(
  p: SharpInstance,
  src: Source,
  params: EngineParams,
  lossless: boolean,
): SharpInstance {
  const convertedCmyk = src.isCmyk && params.cmykToRgb
  if (params.keepExif) return convertedCmyk ? p.keepExif() : p.keepMetadata()
  if (src.meta.icc && !convertedCmyk && (lossless || src.isCmyk)) return p.keepIccProfile()
  return p
}

/** The input itself is not an acceptable answer: it is too big for the box, or CMYK that must become sRGB. */
export function mustChange(src: Source, params: EngineParams): boolean {
  // Both sides: a 1x1000 image in a 500-pixel-high box keeps its width of 1 but must still shrink.
  const frameWidth = src.meta.width ?? 0
  const frameHeight = src.meta.pageHeight ?? src.meta.height ?? 0
  const swapped = (src.meta.orientation ?? 1) >= 5
  const shownWidth = swapped ? frameHeight : frameWidth
  const shownHeight = swapped ? frameWidth : frameHeight
  return src.width !== shownWidth || src.height !== shownHeight || (src.isCmyk && params.cmykToRgb)
}
