import { applyEncoder } from './encode.ts'
import { throwIfAborted, toBytes, type AbortFlag } from './run.ts'
import { withMetadataPolicy, type Source } from './source.ts'
import type { EngineParams } from './types.ts'

/**
 * The WebP version (all frames of an animation). The caller keeps it only when smaller than the input.
 * Palette sources (indexed PNG, GIF) get lossless WebP at every level: lossy WebP halves their chroma and
 * smears colours across the sharp edges such images are made of (a 10x10 palette PNG came out at 12.5 dB
 * PSNR, which the browser test showed as a different hero background); lossless keeps them exact and small.
 */
export async function makeWebp(src: Source, params: EngineParams, signal?: AbortFlag): Promise<Uint8Array> {
  throwIfAborted(signal)
  const lossless = params.compression === 'lossless' || src.meta.isPalette === true
  const p = withMetadataPolicy(src.pipeline(), src, params, lossless)
  const quality = params.compression === 'ultra' ? 70 : 80
  const out = await toBytes(applyEncoder(p, lossless ? { kind: 'webp-lossless' } : { kind: 'webp', quality, effort: 5 }))
  return out.data
}
