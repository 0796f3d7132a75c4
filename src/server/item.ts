import type { EngineParams } from '../engine/types.ts'
import { generateCapability } from './keys.ts'
import { CONTENT_TYPES } from '../contract/formats.ts'
import { safeDownloadName } from './naming.ts'
import type { EngineLike, ResolvedServerOptions } from './options.ts'
import { fetchImage, FetchImageError, type OutboundContext } from './outbound.ts'
import type { DownloadRecord, JobInput, JobRecord, ResultItem, Store } from './store/types.ts'

export interface ItemDeps {
  store: Store
  options: ResolvedServerOptions
  outbound: OutboundContext
  engine: EngineLike
}

export interface ItemOutcome {
  item: ResultItem
  downloads: Omit<DownloadRecord, 'expiresAt'>[]
  charge: number
}

const percent = (saved: number, original: number): number =>
  original === 0 ? 0 : Math.round((saved / original) * 10000) / 100

function failedItem(fileName: string, originalSize: number, error: string): ItemOutcome {
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
  { store, options, outbound, engine }: ItemDeps,
  job: JobRecord,
  input: JobInput,
  signal: AbortSignal,
  written: string[],
): Promise<ItemOutcome> {
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
      if (error instanceof FetchImageError) return failedItem(input.name, 0, error.message)
      throw error
    }
  }
  const size = bytes.length
  if (size === 0) return failedItem(input.name, 0, `${input.name} is empty (0 bytes): send the image's bytes.`)
  if (engine.sniffFormat(bytes) === null) {
    return failedItem(
      input.name,
      size,
      `${input.name} is not a JPEG, PNG, GIF or WebP image (judged from its bytes, not its name or Content-Type).`,
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
  let result
  try {
    result = await engine.optimizeImage(bytes, params, {
      signal,
      ...(options.limitInputPixels === undefined ? {} : { limitInputPixels: options.limitInputPixels }),
    })
  } catch (error) {
    signal.throwIfAborted()
    // Bad input is a per-item failure; anything else is a server fault and fails the job (504).
    if (engine.isEngineError(error)) return failedItem(input.name, size, error.message)
    throw error
  }
  signal.throwIfAborted()
  const optimizedSize = result.data.length
  const saved = size - optimizedSize
  const savedPercent = percent(saved, size)
  // The contract: savings of 5% or less are not an optimization and cost nothing. Compared exactly
  // (saved / size <= 5%), not on the rounded percentage.
  if (saved * 20 <= size) {
    return failedItem(
      input.name,
      size,
      `Saved ${savedPercent}% only (5% or less is not counted as optimized): keep the original; no token was charged.`,
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
