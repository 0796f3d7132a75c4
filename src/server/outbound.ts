import { request, type Agent } from 'undici'
import { assertPublicUrl, BlockedAddressError } from './net-guard.ts'

/** A `url` that could not be fetched: a per-item failure, never a crashed job. */
export class FetchImageError extends Error {
  override readonly name = 'FetchImageError'
}

export interface OutboundContext {
  agent: Agent
  allowPrivateUrls: boolean
  timeoutMs: number
}

const MAX_REDIRECTS = 5

/**
 * Fetches an image for `type=url(s)`: http(s) only, every hop checked against SSRF, a size cap enforced
 * while streaming, Basic auth (`http_user`/`http_pass`) sent to the original origin only.
 */
export async function fetchImage(
  ctx: OutboundContext,
  input: string,
  opts: { maxBytes: number; httpUser: string | null; httpPass: string | null; signal?: AbortSignal },
): Promise<Uint8Array> {
  let url = new URL(input)
  const origin = url.origin
  let user = opts.httpUser
  let pass = opts.httpPass
  // Credentials written in the URL (http://user:pass@host/...) mean the same as http_user/http_pass.
  if (url.username !== '' || url.password !== '') {
    user ??= decodeURIComponent(url.username)
    pass ??= decodeURIComponent(url.password)
    url.username = ''
    url.password = ''
  }
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new FetchImageError(`${url.protocol} URLs are not fetched; use http or https`)
    }
    if (!ctx.allowPrivateUrls) {
      try {
        await assertPublicUrl(url)
      } catch (error) {
        throw new FetchImageError(
          error instanceof BlockedAddressError
            ? `Refused to fetch ${url.host}: ${error.message}`
            : `Could not resolve ${url.hostname}: ${(error as Error).message}`,
        )
      }
    }
    const headers: Record<string, string> = { 'user-agent': 'megaoptim-compatible-server' }
    if (user !== null && url.origin === origin) {
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass ?? ''}`).toString('base64')}`
    }
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(url, {
        dispatcher: ctx.agent,
        method: 'GET',
        headers,
        signal: opts.signal ?? AbortSignal.timeout(ctx.timeoutMs),
      })
    } catch (error) {
      throw new FetchImageError(`Could not fetch ${url.href}: ${(error as Error).message}`)
    }
    const location = res.headers.location
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
      await res.body.dump()
      if (hop >= MAX_REDIRECTS) throw new FetchImageError(`Too many redirects fetching ${input}`)
      url = new URL(location, url)
      continue
    }
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new FetchImageError(`Fetching ${url.href} answered HTTP ${res.statusCode}`)
    }
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      res.body.destroy()
      throw new FetchImageError(`${url.href} is ${declared} bytes, over the ${opts.maxBytes}-byte limit`)
    }
    const chunks: Buffer[] = []
    let total = 0
    try {
      for await (const chunk of res.body) {
        total += (chunk as Buffer).length
        if (total > opts.maxBytes) {
          res.body.destroy()
          throw new FetchImageError(`${url.href} is over the ${opts.maxBytes}-byte limit`)
        }
        chunks.push(chunk as Buffer)
      }
    } catch (error) {
      if (error instanceof FetchImageError) throw error
      throw new FetchImageError(`Reading ${url.href} failed: ${(error as Error).message}`)
    }
    return Buffer.concat(chunks)
  }
}

/**
 * POSTs the finished result to `callback_url` as JSON, retrying with backoff; redirects are not followed.
 * Resolves to whether it was delivered (a 2xx answer); never throws.
 */
export async function deliverCallback(
  ctx: OutboundContext,
  target: string,
  body: unknown,
  delaysMs: readonly number[],
  signal: AbortSignal,
  onAttempt?: (attempt: number, error: string | null) => void,
): Promise<boolean> {
  const payload = JSON.stringify(body)
  for (let attempt = 1; attempt <= delaysMs.length + 1; attempt++) {
    if (signal.aborted) return false
    let problem: string | null = null
    try {
      const url = new URL(target)
      if (!ctx.allowPrivateUrls) await assertPublicUrl(url)
      const res = await request(url, {
        dispatcher: ctx.agent,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'megaoptim-compatible-server' },
        body: payload,
        signal: AbortSignal.any([signal, AbortSignal.timeout(ctx.timeoutMs)]),
      })
      await res.body.dump()
      if (res.statusCode >= 200 && res.statusCode < 300) {
        onAttempt?.(attempt, null)
        return true
      }
      problem = `HTTP ${res.statusCode}`
    } catch (error) {
      problem = (error as Error).message
      // A refused address will not become public on the next attempt.
      if ((error as { code?: string }).code === 'BLOCKED_ADDRESS') {
        onAttempt?.(attempt, problem)
        return false
      }
    }
    onAttempt?.(attempt, problem)
    const delay = delaysMs[attempt - 1]
    if (delay === undefined) break
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delay)
      function done(): void {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done, { once: true })
    })
  }
  return false
}
