import type { EngineErrorCode } from '../engine/errors.ts'
import type { EngineLike } from './options.ts'

/**
 * The engine codes that blame the input itself: those are a per-item `success: 0` (the plugin keeps
 * the original and may cache "no gain"). Every other engine error (sharp missing, a libvips fault,
 * an abort) is the server's fault and fails the job, so the client retries instead of caching it.
 */
export const INPUT_FAULT_CODES: ReadonlySet<EngineErrorCode> = new Set<EngineErrorCode>([
  'ENGINE_UNSUPPORTED_FORMAT',
  'ENGINE_CORRUPT_INPUT',
  'ENGINE_TOO_LARGE',
  'ENGINE_EMPTY_INPUT',
])

let loaded: Promise<EngineLike> | undefined

/**
 * The sharp engine on `threads` engine threads (src/engine/threads.ts): images are optimized off the main
 * thread, while the version, format sniffing and error classes come from the module loaded here.
 */
export async function startEngineThreads(threads: number): Promise<EngineLike & { close(): Promise<void> }> {
  const [engine, { createEngineThreads }] = await Promise.all([loadDefaultEngine(), import('../engine/threads.ts')])
  const pool = createEngineThreads(threads)
  return { ...engine, optimizeImage: pool.optimizeImage, close: pool.close }
}

/** The sharp engine, imported on first use so that merely creating a server loads no native code. */
export function loadDefaultEngine(): Promise<EngineLike> {
  loaded ??= import('../engine/index.ts').then((engine) => ({
    optimizeImage: engine.optimizeImage,
    sniffFormat: engine.sniffFormat,
    isEngineError: (error: unknown): error is Error =>
      error instanceof engine.EngineError && INPUT_FAULT_CODES.has(error.code),
    version: engine.ENGINE_VERSION,
  }))
  // A failed import (sharp missing) is retried on the next job rather than cached forever.
  loaded.catch(() => {
    loaded = undefined
  })
  return loaded
}
