import { applyEncoder, type EncoderSettings } from './encode.ts'
import { throwIfAborted, toBytes, type Encoded } from './run.ts'
import { withMetadataPolicy, type Source } from './source.ts'
import type { EngineParams } from './types.ts'

/** `intelligent` / `ultra`. */
export async function optimizeLossy(src: Source, params: EngineParams, signal?: AbortSignal): Promise<Encoded | null> {
  const ultra = params.compression === 'ultra'
  const candidates: EncoderSettings[] = []
  switch (src.format) {
    case 'jpeg':
      candidates.push({ kind: 'jpeg', quality: ultra ? 70 : 80, chroma: '4:2:0' })
      break
    case 'png':
      candidates.push({ kind: 'png-palette', quality: ultra ? 65 : 80, colours: 256, dither: 1, effort: 10 })
      break
    case 'gif':
      candidates.push({ kind: 'gif', interFrameMaxError: ultra ? 8 : 4, reuse: false, dither: 1 })
      break
    case 'webp':
      candidates.push({ kind: 'webp', quality: ultra ? 70 : 80, effort: 6 })
      break
  }
  let best: Encoded | null = null
  for (const settings of candidates) {
    throwIfAborted(signal)
    const out = await toBytes(applyEncoder(withMetadataPolicy(src.pipeline(), src, params, false), settings))
    if (!best || out.data.length < best.data.length) best = out
  }
  return best
}
