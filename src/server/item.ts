import type { EngineParams } from '../engine/types.ts'
import { generateCapability } from './keys.ts'
import { CONTENT_TYPES } from '../contract/formats.ts'
import { safeDownloadName } from './naming.ts'
import type { EngineLike, ResolvedServerOptions } from './options.ts'
import { fetchImage, FetchImageError, type OutboundContext } from './outbound.ts'
import { headerPixels } from '../contract/formats.ts'
import type { ItemOutcome, JobInput, JobRecord, ResultItem, Store } from './store/types.ts'

export interface ItemDeps {
  store: Store
  options: ResolvedServerOptions
  outbound: OutboundContext
  engine: EngineLike
  /**
   * Called with the pixels the header declares (null: unreadable) before anything is decoded; resolves
   * once the worker may start (the pixel budget allows it, the try is counted) with the function that
   * ends the work (frees the budget). Rejects when the job is stopped meanwhile.
   */
  begin(pixels: number | null): Promise<() => void>
}

/** An item's outcome; `settled` resolves once the engine has really stopped (it may outlive a time budget). */
export type ProcessedItem = ItemOutcome & { settled: Promise<void> }

function abortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

const TIMED_OUT = Symbol('timed out')

/**
 * The engine under the per-item time budget: past it, the engine is aborted and the item answers at
 * once; `settled` tells when the engine has actually let go (the budget and the worker stay held till then).
 */
async function optimizeWithin(
  engine: EngineLike,
  bytes: Uint8Array,
  params: EngineParams,
  signal: AbortSignal,
  options: ResolvedServerOptions,
): Promise<{ result: Awaited<ReturnType<EngineLike['optimizeImage']>> | typeof TIMED_OUT; settled: Promise<void> }> {
  const budget = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      budget.abort(new Error('the item time budget is spent'))
      resolve(TIMED_OUT)
    }, options.itemTimeoutMs)
  })
  const run = engine.optimizeImage(bytes, params, {
    signal: AbortSignal.any([signal, budget.signal]),
    ...(options.limitInputPixels === undefined ? {} : { limitInputPixels: options.limitInputPixels }),
  })
  const settled = run.then(
    () => {},
    () => {},
  )
  void settled.finally(() => clearTimeout(timer))
  // The job stopped (timeout, shutdown): answer now; the engine lets go at its next check.
  const stopped = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason)
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
  stopped.catch(() => {})
  return { result: await Promise.race([run, timedOut, stopped]), settled }
}

const percent = (saved: number, original: number): number =>
  original === 0 ? 0 : Math.round((saved / original) * 10000) / 100

export function failedItem(fileName: string, originalSize: number, error: string): ItemOutcome {
  return {
    item: {
      success: 0,
      file_name: fileName,
      original_size: originalSize,
      optimized_size: originalSize,
      saved_bytes: 0,
      saved_percent: 0,
      url: null,
      webp: null,
      error,
    },
    downloads: [],
    charge: 0,
  }
}

/**
 * One image of a job: read (or fetch) the bytes, check them, optimize, decide `success` (more than 5%
 * saved) and store the downloads (recording each key in `written`, so a failed job can remove them).
 * Bad input is a per-item failure; only a server fault throws, and that fails the job.
 */
export async function processItem(
  deps: ItemDeps,
  job: JobRecord,
  input: JobInput,
  signal: AbortSignal,
  written: string[],
): Promise<ProcessedItem> {
  const { store, options, outbound, engine } = deps
  const now = (outcome: ItemOutcome): ProcessedItem => ({ ...outcome, settled: Promise.resolve() })
  signal.throwIfAborted()
  let bytes: Uint8Array
  if (input.kind === 'file') {
    const stored = await store.blobs.get(input.blob)
    if (!stored) throw new Error(`the upload of ${input.name} is missing from the store`)
    bytes = stored
  } else {
    try {
      bytes = await fetchImage(outbound, input.url, {
        maxBytes: options.maxFileSize,
        httpUser: job.params.httpUser,
        httpPass: job.params.httpPass,
        signal: AbortSignal.any([signal, AbortSignal.timeout(options.fetchTimeoutMs)]),
      })
    } catch (error) {
      signal.throwIfAborted()
      if (error instanceof FetchImageError) return now(failedItem(input.name, 0, error.message))
      throw error
    }
  }
  const size = bytes.length
  if (size === 0) return now(failedItem(input.name, 0, `${input.name} is empty (0 bytes): send the image's bytes.`))
  if (engine.sniffFormat(bytes) === null) {
    return now(
      failedItem(
        input.name,
        size,
        `${input.name} is not a JPEG, PNG, GIF or WebP image (judged from its bytes, not its name or Content-Type).`,
      ),
    )
  }
  const params: EngineParams = {
    compression: job.params.compression,
    webp: job.params.webp,
    cmykToRgb: job.params.cmykToRgb,
    keepExif: job.params.keepExif,
    maxWidth: job.params.maxWidth,
    maxHeight: job.params.maxHeight,
  }
  // Nothing is decoded before the header's pixels fit in the budget the workers share.
  const end = await deps.begin(headerPixels(bytes))
  let result
  let settled: Promise<void> = Promise.resolve()
  try {
    if (options.jobDelayMs > 0) await abortable(options.jobDelayMs, signal)
    ;({ result, settled } = await optimizeWithin(engine, bytes, params, signal, options))
  } catch (error) {
    end()
    signal.throwIfAborted()
    // Bad input is a per-item failure; anything else is a server fault and fails the job (504).
    if (engine.isEngineError(error)) return now(failedItem(input.name, size, error.message))
    throw error
  }
  void settled.finally(end)
  signal.throwIfAborted()
  if (result === TIMED_OUT) {
    return {
      ...failedItem(
        input.name,
        size,
        `Not optimized within the ${options.itemTimeoutMs / 1000} s time budget of one image: keep the original; no token was charged.`,
      ),
      settled,
    }
  }
  const optimizedSize = result.data.length
  const saved = size - optimizedSize
  const savedPercent = percent(saved, size)
  // The contract: savings of 5% or less are not an optimization and cost nothing. Compared exactly
  // (saved / size <= 5%), not on the rounded percentage.
  if (saved * 20 <= size) {
    return now(
      failedItem(
        input.name,
        size,
        `Saved ${savedPercent}% only (5% or less is not counted as optimized): keep the original; no token was charged.`,
      ),
    )
  }
  const dir = generateCapability()
  const name = safeDownloadName(input.name)
  const key = `out/${dir}/${name}`
  await store.blobs.put(key, result.data)
  written.push(key)
  const downloads: ItemOutcome['downloads'] = [
    { dir, name, blob: key, size: optimizedSize, contentType: CONTENT_TYPES[result.format], jobId: job.id },
  ]
  let webp: ResultItem['webp'] = null
  if (job.params.webp && result.webp && result.webp.length > 0 && result.webp.length < size) {
    const webpKey = `${key}.webp`
    await store.blobs.put(webpKey, result.webp)
    written.push(webpKey)
    downloads.push({
      dir,
      name: `${name}.webp`,
      blob: webpKey,
      size: result.webp.length,
      contentType: CONTENT_TYPES.webp,
      jobId: job.id,
    })
    webp = {
      url: `/image/${dir}/${encodeURIComponent(name)}.webp`,
      optimized_size: result.webp.length,
      saved_bytes: size - result.webp.length,
      saved_percent: percent(size - result.webp.length, size),
    }
  }
  return {
    settled,
    item: {
      success: 1,
      file_name: input.name,
      original_size: size,
      optimized_size: optimizedSize,
      saved_bytes: saved,
      saved_percent: savedPercent,
      url: `/image/${dir}/${encodeURIComponent(name)}`,
      webp,
    },
    downloads,
    // One token per optimized image; the WebP version is free.
    charge: 1,
  }
}
