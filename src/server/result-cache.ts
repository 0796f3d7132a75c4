import { createHash } from 'node:crypto'
import type { EngineParams } from '../engine/types.ts'
import type { EngineLike } from './options.ts'
import type { Store } from './store/types.ts'

/**
 * The team result cache around the engine: for one account, the same bytes with the same parameters
 * (and the same engine version) are encoded once; later requests, on any replica, reuse the stored
 * result. The item is then judged and charged exactly as after an encode, so tokens follow the contract.
 * "No gain" results are kept too: asking again changes nothing.
 */
export function withResultCache(engine: EngineLike, store: Store, accountId: string, keepMs: number, now: () => number): EngineLike {
  const find = store.findCachedResult?.bind(store)
  const save = store.saveCachedResult?.bind(store)
  if (!find || !save || keepMs <= 0) return engine
  return {
    version: engine.version,
    sniffFormat: (bytes) => engine.sniffFormat(bytes),
    isEngineError: (error: unknown): error is Error => engine.isEngineError(error),
    async optimizeImage(input, params, options) {
      const key = cacheKey(engine.version, input, params)
      const hit = await find(accountId, key, now())
      if (hit) return hit
      const result = await engine.optimizeImage(input, params, options)
      // A cache that cannot be written only costs a later encode.
      await save(accountId, key, result, now() + keepMs).catch(() => {})
      return result
    },
  }
}

function cacheKey(engineVersion: string, input: Uint8Array, params: EngineParams): string {
  const settings = [params.compression, params.webp, params.cmykToRgb, params.keepExif, params.maxWidth, params.maxHeight]
  return createHash('sha256').update(JSON.stringify([engineVersion, settings])).update(input).digest('hex')
}
