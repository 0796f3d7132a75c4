import type { Sharp as SharpInstance } from 'sharp'
import { EngineError } from './errors.ts'

export interface Encoded {
  data: Uint8Array
  width: number
  height: number
  /** What produced it, e.g. `jpeg q72 4:2:0` (for logs and the benchmark). */
  settings?: string
}

/** Run a pipeline to bytes; the height is one frame's for animations. */
export async function toBytes(p: SharpInstance): Promise<Encoded> {
  const { data, info } = await p.toBuffer({ resolveWithObject: true })
  const pageHeight = (info as { pageHeight?: number }).pageHeight
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: pageHeight ?? info.height }
}

/**
 * What the engine reads to know it must stop: an `AbortSignal`, or in an engine thread a flag the server
 * sets from the other side (src/engine/thread.ts), as a thread cannot receive a signal's event mid-task.
 */
export type AbortFlag = Pick<AbortSignal, 'aborted'>

export function throwIfAborted(signal: AbortFlag | undefined): void {
  if (signal?.aborted) throw new EngineError('ENGINE_ABORTED', 'Optimizing was cancelled; the original is kept.')
}

/** Let pending I/O (the server's long-polls) run between two heavy steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
