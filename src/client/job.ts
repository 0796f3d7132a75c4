/**
 * One `/optimize` job: submit up to 5 items, long-poll `/result` until done or the deadline, then download
 * and verify each result. Resolves to one outcome per item; only the caller's abort rejects.
 */
import { Blob } from 'node:buffer'
import { FormData, type Dispatcher } from 'undici'
import type PQueue from 'p-queue'
import type { Batch } from './batch.ts'
import { downloadVerified, type DownloadSpec } from './download.ts'
import { InvalidResponseError, type MegaOptimError, isMegaOptimError } from './errors.ts'
import { type ApiEnvelope, type HttpContext, callApi } from './http.ts'
import { type UniqueItem, loadBytes } from './inputs.ts'
import { type ResultItem, matchResults } from './match.ts'
import type { ResolvedClientOptions } from './options.ts'
import { type ResolvedParams, paramFields } from './params.ts'
import { type Deadline, type Scheduler, sleep } from './scheduler.ts'

export type ItemOutcome =
  | { status: 'optimized'; originalSize: number; optimizedSize: number; data: Uint8Array; webp: Uint8Array | null; webpError?: MegaOptimError }
  | { status: 'no-gain'; originalSize: number; reason?: string }
  | { status: 'failed'; error: MegaOptimError }

export interface JobContext {
  http: HttpContext
  dispatcher: Dispatcher
  scheduler: Scheduler
  downloads: PQueue
  opts: ResolvedClientOptions
  params: ResolvedParams
  deadline: Deadline
  /** How much later the deadline moves each time the API accepts a job (the pacing it took), or 0. */
  earnMs: number
  signal?: AbortSignal
}

const PROCESS_ID = /^[A-Za-z0-9_-]{1,128}$/

export async function runJob(batch: Batch, ctx: JobContext): Promise<Map<UniqueItem, ItemOutcome>> {
  const outcomes = new Map<UniqueItem, ItemOutcome>()
  const failAll = (items: readonly UniqueItem[], error: MegaOptimError) => {
    for (const item of items) outcomes.set(item, { status: 'failed', error: error.forFile(item.uploadName) })
  }

  // Files are read now, not earlier, so only the jobs in flight hold bytes in memory.
  const items: UniqueItem[] = []
  const bytes = new Map<UniqueItem, Uint8Array>()
  for (const item of batch.items) {
    if (item.source.kind === 'url') {
      items.push(item)
      continue
    }
    try {
      bytes.set(item, await loadBytes(item))
      items.push(item)
    } catch (error) {
      if (!isMegaOptimError(error)) throw error
      outcomes.set(item, { status: 'failed', error })
    }
  }
  if (items.length === 0) return outcomes
  const names = items.map((i) => i.uploadName)

  let results: unknown[]
  try {
    results = await submitAndWait(batch.kind, items, bytes, names, ctx)
  } catch (error) {
    if (!isMegaOptimError(error)) throw error
    if (error.code === 'MEGAOPTIM_VALIDATION' && items.length > 1) {
      // The API refuses a whole request for one bad image (too large, say): ask again image by image,
      // so that one fails alone instead of taking its batch-mates down with it on every build.
      ctx.scheduler.emit({ type: 'retried', endpoint: '/optimize', attempt: 1, delayMs: 0, reason: `${error.code}: one image at a time after: ${error.message}` })
      await Promise.all(
        items.map(async (item) => {
          const single = await runJob({ kind: batch.kind, items: [item] }, ctx)
          outcomes.set(item, single.get(item)!)
        }),
      )
      return outcomes
    }
    failAll(items, error)
    return outcomes
  }

  const matched = matchResults(names, results)
  await Promise.all(
    items.map(async (item, i) => {
      outcomes.set(item, await settleItem(item, matched[i], bytes.get(item), ctx))
    }),
  )
  return outcomes
}

async function submitAndWait(
  kind: Batch['kind'],
  items: UniqueItem[],
  bytes: Map<UniqueItem, Uint8Array>,
  names: string[],
  ctx: JobContext,
): Promise<unknown[]> {
  const { scheduler, opts, http } = ctx
  const runCtx = { signal: ctx.signal, deadline: ctx.deadline, files: names, path: '/optimize' }
  const submitted = await scheduler.run('optimize', runCtx, (signal, onWire, timeLeftMs, onRateHeaders) =>
    callApi(http, {
      onWire,
      onRateHeaders,
      kind: 'optimize',
      path: '/optimize',
      method: 'POST',
      // Built per attempt: a FormData is consumed by sending it.
      body: buildForm(kind, items, bytes, ctx.params),
      timeoutMs: Math.min(opts.requestTimeout, timeLeftMs),
      signal,
      files: names,
    }),
  )
  noteTokens(submitted, scheduler)
  // The API answered: the time our own pacing costs is not waiting on it.
  ctx.deadline.endsAt += ctx.earnMs
  if (submitted.code === 200 && Array.isArray(submitted.result)) return submitted.result
  const id = submitted.process_id
  if (typeof id !== 'string' || !PROCESS_ID.test(id)) {
    throw new InvalidResponseError(`POST /optimize for ${names.join(', ')} answered ${submitted.code} without a usable process_id. Check that the endpoint is a MegaOptim API.`, { endpoint: '/optimize', apiCode: submitted.code }, false)
  }

  const path = `/optimize/${id}/result`
  for (;;) {
    const remainingS = Math.ceil((ctx.deadline.endsAt - Date.now()) / 1000)
    // The server answers "still processing" a little before the deadline would cut the request: that
    // answer is a sign of life, and a deadline with `renewMs` goes on.
    const wait = Math.max(1, Math.min(opts.pollTimeoutSeconds, remainingS - 2))
    const answer: ApiEnvelope = await scheduler.run('result', { ...runCtx, path }, (signal, onWire, timeLeftMs, onRateHeaders) =>
      callApi(http, {
        onWire,
        onRateHeaders,
        kind: 'result',
        path: `${path}?timeout=${wait}`,
        method: 'POST',
        // The server may hold the request for `wait` seconds before answering.
        timeoutMs: Math.min(wait * 1000 + opts.requestTimeout, timeLeftMs),
        signal,
        files: names,
      }),
    )
    noteTokens(answer, scheduler)
    if (answer.code === 200) {
      if (!Array.isArray(answer.result)) {
        throw new InvalidResponseError(`POST ${path} for ${names.join(', ')} answered ok without a result list. Check that the endpoint is a MegaOptim API.`, { endpoint: path, apiCode: 200 }, false)
      }
      return answer.result
    }
    // 202: still processing. Ask again; the scheduler stops at the deadline.
  }
}

function buildForm(kind: Batch['kind'], items: UniqueItem[], bytes: Map<UniqueItem, Uint8Array>, params: ResolvedParams): FormData {
  const form = new FormData()
  const single = items.length === 1
  form.append('type', kind === 'url' ? (single ? 'url' : 'urls') : single ? 'file' : 'files')
  for (const [k, v] of paramFields(params)) form.append(k, v)
  items.forEach((item, i) => {
    const field = kind === 'url' ? (single ? 'url' : `url${i + 1}`) : single ? 'file' : `file${i + 1}`
    if (item.source.kind === 'url') form.append(field, item.source.url)
    else form.append(field, new Blob([bytes.get(item)!], { type: 'application/octet-stream' }), item.uploadName)
  })
  return form
}

async function settleItem(item: UniqueItem, result: ResultItem | undefined, data: Uint8Array | undefined, ctx: JobContext): Promise<ItemOutcome> {
  const name = item.uploadName
  const originalSize = num(result?.original_size) ?? item.size ?? 0
  if (!result) {
    return failed(new InvalidResponseError(`${name}: the API's result has no entry for this image. Run again; the original is kept.`, { file: name, endpoint: '/result' }, false))
  }
  if (result.success !== 1 && result.success !== true && result.success !== '1') {
    // `success: 0` covers both "5% or less saved" and "could not be processed"; the contract gives no way to
    // tell them apart, so both keep the original. A compatible server may say why in `error`.
    const reason = typeof result.error === 'string' && result.error ? result.error.slice(0, 300) : undefined
    return { status: 'no-gain', originalSize: data?.length ?? originalSize, ...(reason ? { reason } : {}) }
  }
  const optimizedSize = num(result.optimized_size)
  if (typeof result.url !== 'string' || optimizedSize === undefined || optimizedSize <= 0) {
    return failed(new InvalidResponseError(`${name}: the API reported success without a download url and optimized_size. The original is kept.`, { file: name, endpoint: '/result' }, false))
  }
  try {
    const optimized = await download(ctx, { url: absolute(result.url, ctx), file: name, size: optimizedSize, format: item.format, what: 'optimized image' })
    const base = { status: 'optimized' as const, originalSize: data?.length ?? originalSize, optimizedSize, data: optimized }
    const w = result.webp
    if (!ctx.params.webp || !w || typeof w !== 'object') return { ...base, webp: null }
    // The optimized image is verified and paid for: a bad WebP version loses only itself.
    const wo = w as { url?: unknown; optimized_size?: unknown }
    const webpSize = num(wo.optimized_size)
    if (typeof wo.url !== 'string' || webpSize === undefined) {
      return { ...base, webp: null, webpError: new InvalidResponseError(`${name}: the API offered a WebP version without url and optimized_size; no WebP is written.`, { file: name, endpoint: '/result' }, false) }
    }
    try {
      return { ...base, webp: await download(ctx, { url: absolute(wo.url, ctx), file: name, size: webpSize, format: 'webp', what: 'WebP version' }) }
    } catch (error) {
      if (!isMegaOptimError(error) || error.code === 'MEGAOPTIM_DEADLINE') throw error
      return { ...base, webp: null, webpError: error }
    }
  } catch (error) {
    if (!isMegaOptimError(error)) throw error
    return failed(error)
  }
}

/** A download, with bounded retries on network errors, timeouts and 5xx. Not rate-limited. */
async function download(ctx: JobContext, spec: DownloadSpec): Promise<Uint8Array> {
  const { opts, scheduler } = ctx
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.downloads.add(
        () => {
          scheduler.stats.downloads = (scheduler.stats.downloads ?? 0) + 1
          // Bounded by the deadline too, yet long enough to fetch a result that finished just before it.
          const timeoutMs = Math.min(opts.requestTimeout, Math.max(1000, ctx.deadline.endsAt - Date.now()))
          return downloadVerified(ctx.dispatcher, spec, timeoutMs, ctx.signal)
        },
        { signal: ctx.signal },
      )
    } catch (error) {
      if (ctx.signal?.aborted) throw ctx.signal.reason
      if (!isMegaOptimError(error) || !error.retryable || attempt >= opts.maxAttempts) throw error
      const cap = Math.min(opts.retryMaxDelay, opts.retryBaseDelay * 2 ** (attempt - 1))
      const delay = Math.round(cap / 2 + (Math.random() * cap) / 2)
      if (Date.now() + delay >= ctx.deadline.endsAt) throw error
      scheduler.stats.retries++
      scheduler.emit({ type: 'retried', endpoint: error.endpoint ?? 'download', attempt, delayMs: delay, reason: `${error.code}: ${error.message}` })
      await sleep(delay, ctx.signal)
    }
  }
}

/** Result URLs should be absolute; a relative one is taken against the API's origin rather than dropped. */
function absolute(url: string, ctx: JobContext): string {
  try {
    return new URL(url, `${ctx.http.base}/`).href
  } catch {
    return url
  }
}

function noteTokens(envelope: ApiEnvelope, scheduler: Scheduler): void {
  const user = envelope.user as { tokens?: unknown } | undefined
  const tokens = num(user?.tokens)
  if (tokens !== undefined) scheduler.stats.tokensLeft = tokens
}

function num(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined
}

function failed(error: MegaOptimError): ItemOutcome {
  return { status: 'failed', error }
}
