/**
 * Fetches a result URL and proves it is what the API claimed: HTTP 200, non-empty, exactly
 * `optimized_size` bytes, and sniffed as the expected format. The API key is never sent: result URLs
 * are capability URLs, possibly on another host.
 */
import { request, type Dispatcher } from 'undici'
import { DownloadError, type MegaOptimError, NetworkError, TimeoutError, safeCause } from './errors.ts'
import { withTimeout } from './http.ts'
import { type ImageFormat, sniffFormat } from '../contract/formats.ts'

export interface DownloadSpec {
  url: string
  /** The input's name, for messages. */
  file: string
  size: number
  /** null: any of JPEG, PNG, GIF, WebP. */
  format: ImageFormat | null
  /** `'WebP version'` or `'optimized image'`, for messages. */
  what: string
}

export async function downloadVerified(
  dispatcher: Dispatcher,
  spec: DownloadSpec,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  let url: URL
  try {
    url = new URL(spec.url)
  } catch {
    throw fail(spec, 'the API gave a URL that does not parse')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(spec, 'the API gave a URL that is not http(s)')
  const endpoint = url.pathname
  const timed = withTimeout(timeoutMs, signal)
  try {
    let res: Dispatcher.ResponseData
    try {
      // No headers beyond undici's defaults: in particular no X-API-KEY.
      res = await request(url, { method: 'GET', dispatcher, signal: timed.signal })
    } catch (error) {
      throw transport(error, spec, endpoint, timed.signal, signal)
    }
    if (res.statusCode !== 200) {
      res.body.resume()
      const retryable = res.statusCode >= 500
      throw fail(spec, `the download answered HTTP ${res.statusCode}${res.statusCode === 404 || res.statusCode === 410 ? ' (results expire one hour after the job)' : ''}`, retryable)
    }
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > spec.size) {
      res.body.destroy()
      throw fail(spec, `the download is ${declared} bytes but the API said ${spec.size}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length
        if (size > spec.size) {
          res.body.destroy()
          throw fail(spec, `the download is more than the ${spec.size} bytes the API said`)
        }
        chunks.push(chunk as Buffer)
      }
    } catch (error) {
      if (error instanceof DownloadError) throw error
      throw transport(error, spec, endpoint, timed.signal, signal)
    }
    const data = new Uint8Array(Buffer.concat(chunks))
    if (data.length === 0) throw fail(spec, 'the download is empty')
    if (data.length !== spec.size) throw fail(spec, `the download is ${data.length} bytes but the API said ${spec.size}`)
    const format = sniffFormat(data)
    if (!format || (spec.format !== null && format !== spec.format)) {
      throw fail(spec, `the download is ${format ? `a ${format.toUpperCase()}` : 'not an image'} but a ${spec.format?.toUpperCase() ?? 'JPEG, PNG, GIF or WebP'} was expected`)
    }
    return data
  } finally {
    timed.cleanup()
  }

  function fail(s: DownloadSpec, why: string, retryable = false): DownloadError {
    return new DownloadError(`${s.file}: the ${s.what} could not be used: ${why}. The original is kept; run again to retry.`, { file: s.file, endpoint: endpointOf(s.url) }, retryable)
  }
}

function transport(error: unknown, spec: DownloadSpec, endpoint: string, timed: AbortSignal, caller?: AbortSignal): unknown {
  if (caller?.aborted) return caller.reason
  const cause = safeCause(error)
  const details = { file: spec.file, endpoint, cause }
  let e: MegaOptimError
  if (timed.aborted) e = new TimeoutError(`${spec.file}: downloading the ${spec.what} timed out (retried up to maxAttempts times). Raise requestTimeout if the network is slow; the original is kept.`, details)
  else e = new NetworkError(`${spec.file}: downloading the ${spec.what} failed on the network (${cause.code ?? cause.name}: ${cause.message}). (retried up to maxAttempts times). Check the network; the original is kept.`, details)
  return e
}

function endpointOf(href: string): string {
  try {
    return new URL(href).pathname
  } catch {
    return href
  }
}
