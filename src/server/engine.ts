import type { EngineLike } from './options.ts'

let loaded: Promise<EngineLike> | undefined

/** The sharp engine, imported on first use so that merely creating a server loads no native code. */
export function loadDefaultEngine(): Promise<EngineLike> {
  loaded ??= import('../engine/index.ts').then((engine) => ({
    optimizeImage: engine.optimizeImage,
    sniffFormat: engine.sniffFormat,
    isEngineError: (error: unknown): error is Error => error instanceof engine.EngineError,
    version: engine.ENGINE_VERSION,
  }))
  // A failed import (sharp missing) is retried on the next job rather than cached forever.
  loaded.catch(() => {
    loaded = undefined
  })
  return loaded
}
