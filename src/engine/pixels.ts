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

/** The distinct RGBA colours, counted up to `cap` + 1: counting stops as soon as there are more than `cap`. */
export function countColours(rgba: Buffer, cap = 256): number {
  const seen = new Set<number>()
  for (let i = 0; i + 3 < rgba.length; i += 4) {
    seen.add(rgba.readUInt32LE(i))
    if (seen.size > cap) break
  }
  return seen.size
}
