import { applyEncoder } from './encode.ts'
import { throwIfAborted, toBytes } from './run.ts'
import { withMetadataPolicy, type Source } from './source.ts'
import type { EngineParams } from './types.ts'

/** The WebP version (all frames of an animation). The caller keeps it only when smaller than the input. */
export async function makeWebp(src: Source, params: EngineParams, signal?: AbortSignal): Promise<Uint8Array> {
  throwIfAborted(signal)
  const lossless = params.compression === 'lossless'
  const p = withMetadataPolicy(src.pipeline(), src, params, lossless)
  const quality = params.compression === 'ultra' ? 70 : 80
  const out = await toBytes(applyEncoder(p, lossless ? { kind: 'webp-lossless' } : { kind: 'webp', quality, effort: 5 }))
  return out.data
}
