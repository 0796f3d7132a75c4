import type { Sharp as SharpInstance } from 'sharp'
import type { Sharp } from './load-sharp.ts'

/**
 * Decoded pixels in one canonical layout (sRGB or 16-bit RGB, always with alpha, all frames), so that a
 * grey PNG and its palette re-encode compare equal when, and only when, every pixel is the same.
 */
export async function canonicalPixels(
  p: SharpInstance,
  sixteenBit: boolean,
): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await p
    .toColourspace(sixteenBit ? 'rgb16' : 'srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
  return { data, width: info.width, height: info.height }
}

/** Does `candidate` decode to exactly `reference`'s canonical pixels? */
export async function decodesTo(
  sharp: Sharp,
  candidate: Uint8Array,
  reference: { data: Buffer; width: number; height: number },
  opts: { animated: boolean; sixteenBit: boolean },
): Promise<boolean> {
  const p = sharp(candidate, { animated: opts.animated, limitInputPixels: false })
  const c = await canonicalPixels(p, opts.sixteenBit)
  return c.width === reference.width && c.height === reference.height && c.data.equals(reference.data)
}

/**
 * The distinct pixel values of interleaved 8-bit pixels (`channels` per pixel, RGBA by default), counted
 * up to `cap` + 1: counting stops as soon as there are more than `cap`.
 */
export function countColours(pixels: Uint8Array, cap = 256, channels = 4): number {
  const seen = new Set<number>()
  let last = -1
  for (let i = 0; i + channels - 1 < pixels.length; i += channels) {
    const v =
      channels === 4
        ? ((pixels[i]! << 24) | (pixels[i + 1]! << 16) | (pixels[i + 2]! << 8) | pixels[i + 3]!) >>> 0
        : channels === 3
          ? (pixels[i]! << 16) | (pixels[i + 1]! << 8) | pixels[i + 2]!
          : channels === 2
            ? (pixels[i]! << 8) | pixels[i + 1]!
            : pixels[i]!
    // Flat areas repeat their left neighbour: only a change can be a new colour.
    if (v === last) continue
    last = v
    seen.add(v)
    if (seen.size > cap) break
  }
  return seen.size
}
