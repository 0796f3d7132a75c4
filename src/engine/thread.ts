/**
 * The body of an engine thread (src/engine/threads.ts runs a pool of them): one image per task, so that
 * the engine's JavaScript (the metric, the residual quantizer) runs on its own core instead of sharing the
 * main thread with the bundler and the HTTP server.
 */
import { EngineError, optimizeImage, type EngineErrorCode, type EngineOutput } from './index.ts'
import type { EngineParams } from './types.ts'

export interface ThreadTask {
  input: Uint8Array
  params: EngineParams
  limitInputPixels: number | undefined
  /** Set to 1 by the server to stop the engine at its next check (a thread gets no abort event mid-task). */
  stop: Int32Array
}

/** An EngineError crosses the thread boundary as data: structured cloning keeps neither its class nor its code. */
export type ThreadAnswer = { ok: true; output: EngineOutput } | { ok: false; code: EngineErrorCode; message: string }

export default async function optimizeInThread(task: ThreadTask): Promise<ThreadAnswer> {
  const signal = {
    get aborted(): boolean {
      return Atomics.load(task.stop, 0) !== 0
    },
  }
  try {
    const output = await optimizeImage(task.input, task.params, {
      signal,
      ...(task.limitInputPixels === undefined ? {} : { limitInputPixels: task.limitInputPixels }),
    })
    return { ok: true, output }
  } catch (error) {
    const e = error instanceof EngineError ? error : new EngineError('ENGINE_FAILED', `Optimizing failed: ${String(error)}`)
    return { ok: false, code: e.code, message: e.message }
  }
}
