import Tinypool from 'tinypool'
import { EngineError } from './errors.ts'
import type { EngineOutput } from './index.ts'
import { loadSharp } from './load-sharp.ts'
import { throwIfAborted } from './run.ts'
import type { ThreadAnswer, ThreadTask } from './thread.ts'
import type { EngineOptions, EngineParams } from './types.ts'

/** The thread body: the built file next to this chunk, or from source through tsx (tests, benchmarks). */
const THREAD_FILE = import.meta.url.endsWith('.ts')
  ? new URL('./thread-source.mjs', import.meta.url)
  : new URL('./engine-thread.js', import.meta.url)

export interface EngineThreads {
  optimizeImage(input: Uint8Array, params: EngineParams, options?: EngineOptions): Promise<EngineOutput>
  /** Ends the threads once their images are done. */
  close(): Promise<void>
}

/**
 * `optimizeImage` on a pool of `threads` engine threads (src/engine/thread.ts). The engine's JavaScript is
 * half of its time, and on the main thread the images of a build queued for one core while the bundler and
 * the HTTP server waited behind them; each thread now takes a core of its own.
 *
 * sharp is loaded here, on the main thread, before any thread starts: a thread that exits must not be the
 * last user of libvips, which cannot be unloaded and loaded again (sharp's "worker threads" note).
 */
export function createEngineThreads(threads: number): EngineThreads {
  let pool: Promise<Tinypool> | undefined
  let closed = false
  const open = (): Promise<Tinypool> => {
    pool ??= loadSharp().then(
      () => new Tinypool({ filename: THREAD_FILE.href, minThreads: threads, maxThreads: threads, idleTimeout: 0 }),
      (error: unknown) => {
        pool = undefined
        throw error
      },
    )
    return pool
  }
  // Started now, not at the first image: each thread loads sharp and the engine as it starts (~0.5 s
  // on a 2-core machine), and the server creates its threads as it starts listening, while the first
  // upload is still on its way. A failure (sharp missing) is reported, and retried, by the first image.
  open().catch(() => {})
  return {
    async optimizeImage(input, params, options = {}) {
      if (closed) throw new EngineError('ENGINE_ABORTED', 'The engine was shut down; the original is kept.')
      throwIfAborted(options.signal)
      const stop = new Int32Array(new SharedArrayBuffer(4))
      const signal = options.signal as AbortSignal | undefined
      const onAbort = (): void => void Atomics.store(stop, 0, 1)
      signal?.addEventListener?.('abort', onAbort, { once: true })
      try {
        // A copy of exactly the image: a view into a larger buffer would otherwise be cloned whole.
        const own = new Uint8Array(input)
        const task: ThreadTask = { input: own, params, limitInputPixels: options.limitInputPixels, stop }
        const answer = (await (await open()).run(task, { transferList: [own.buffer] })) as ThreadAnswer
        if (!answer.ok) throw new EngineError(answer.code, answer.message)
        return answer.output
      } finally {
        signal?.removeEventListener?.('abort', onAbort)
      }
    },
    async close() {
      closed = true
      const p = pool
      pool = undefined
      if (p) await (await p.catch(() => undefined))?.destroy()
    },
  }
}
