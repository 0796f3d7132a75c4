/**
 * `npm run bench -- client`: throughput of the client against the loopback fake API, which enforces a
 * rate limit (sliding window on arrivals, per endpoint) and takes time to process each job.
 *
 * Time is scaled down 3x so a run stays under a minute: the hosted API's 120 requests per 60 s window
 * becomes 120 requests per 20 s, and a job's ~2 s of processing becomes 667 ms. The ceiling is the limit × 5 images per request. In the same run, the official clients' pattern
 * (one image per request, strictly one after another: optimize → poll result → download) runs against
 * the same server for comparison.
 *
 * Then the held-out case: a server that allows only 30 requests per window while the client assumes the
 * hosted 120, once telling its limit in X-RateLimit-* headers (Laravel style) and once saying nothing at all
 * (no headers, not even Retry-After). Its ceiling is 30 × 5 images per window.
 */
import { Blob } from 'node:buffer'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { FormData, request } from 'undici'
import { MegaOptimClient } from '../src/client.ts'
import type { FakeApiOptions } from '../test/helpers/fake-api.ts'

const WINDOW_MS = 20_000
const REQUESTS_PER_WINDOW = 120
const PROCESSING_MS = 667
const CLIENT_IMAGES = 900
const OFFICIAL_SECONDS = 10

const png = new Uint8Array(readFileSync(new URL('../test/fixtures/images/palette_color.png', import.meta.url)))
const images = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(png.length + 8)
    data.set(png)
    new DataView(data.buffer).setUint32(png.length, i)
    data.set(new TextEncoder().encode(tag.slice(0, 4)), png.length + 4)
    return { name: `${tag}-${i}.png`, data }
  })

/** The fake API in its own thread, as a real server would be. */
async function startServer(options: FakeApiOptions) {
  // A worker does not inherit tsx's loader: register it, then load the TypeScript entry.
  const entry = new URL('./_fake-api-worker.ts', import.meta.url).href
  const tsx = import.meta.resolve('tsx/esm/api')
  const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}) })`
  const worker = new Worker(code, { eval: true, workerData: options })
  const [ready] = (await once(worker, 'message')) as [{ endpoint: string; apiKey: string }]
  const ask = async <T>(msg: object): Promise<T> => {
    worker.postMessage(msg)
    return ((await once(worker, 'message')) as [T])[0]
  }
  return {
    ...ready,
    stats: () => ask<{ rateLimited: number; maxInWindow: number }>({ type: 'stats', perMs: WINDOW_MS }),
    close: async () => {
      await ask({ type: 'close' })
      await worker.terminate()
    },
  }
}

const ceilingPerMin = (REQUESTS_PER_WINDOW / WINDOW_MS) * 60_000 * 5
/** The held-out case: the server allows 30 requests a (scaled) minute while the client assumes 120. */
const LOW_LIMIT = 30
const LOW_IMAGES = 300
const lowCeilingPerMin = (LOW_LIMIT / WINDOW_MS) * 60_000 * 5

interface Row {
  pattern: string
  /** The best a client can do against this server, in images/min. */
  ceiling: number
  images: number
  seconds: number
  perMin: number
  limited: number
  requests: number
  failed: number
  maxInWindow: number
}

async function runClient(
  pattern = 'this client: batches of 5, paced',
  limit: FakeApiOptions['rateLimit'] = { requests: REQUESTS_PER_WINDOW, perMs: WINDOW_MS },
  count = CLIENT_IMAGES,
  ceiling = ceilingPerMin,
): Promise<Row> {
  const api = await startServer({ rateLimit: limit, processingMs: PROCESSING_MS })
  // The client always assumes the hosted API's 120 per window; only the server's limit changes.
  const client = new MegaOptimClient({ apiKey: api.apiKey, endpoint: api.endpoint, rateLimit: { requests: REQUESTS_PER_WINDOW, perMs: WINDOW_MS } })
  const t0 = performance.now()
  const outcomes = await client.optimize(images(count, 'client'))
  const seconds = (performance.now() - t0) / 1000
  const optimized = outcomes.filter((o) => o.status === 'optimized').length
  const server = await api.stats()
  const row: Row = {
    pattern,
    ceiling,
    images: optimized,
    seconds,
    perMin: (optimized / seconds) * 60,
    limited: server.rateLimited,
    requests: client.stats.requests,
    failed: outcomes.length - optimized,
    maxInWindow: server.maxInWindow,
  }
  await client.close()
  await api.close()
  return row
}

/** What the official Node/Python/PHP clients do: one file per request, one after another, no pacing. */
async function runOfficialPattern(): Promise<Row> {
  const api = await startServer({ rateLimit: { requests: REQUESTS_PER_WINDOW, perMs: WINDOW_MS }, processingMs: PROCESSING_MS })
  const headers = { 'x-api-key': api.apiKey }
  const post = async (path: string, body?: FormData) => {
    const res = await request(`${api.endpoint}${path}`, { method: 'POST', headers, body })
    return (await res.body.json()) as { code: number; process_id?: string; result?: Array<{ url: string }> }
  }
  let optimized = 0
  let failed = 0
  let requests = 0
  const t0 = performance.now()
  for (const image of images(10_000, 'official')) {
    if (performance.now() - t0 >= OFFICIAL_SECONDS * 1000) break
    const form = new FormData()
    form.append('type', 'file')
    form.append('file', new Blob([image.data]), image.name)
    const submitted = await post('/optimize', form)
    requests++
    if (submitted.code !== 202 || !submitted.process_id) {
      failed++
      continue
    }
    let answer
    do {
      answer = await post(`/optimize/${submitted.process_id}/result?timeout=300`)
      requests++
    } while (answer.code === 202)
    const url = answer.result?.[0]?.url
    if (answer.code !== 200 || !url) {
      failed++
      continue
    }
    const res = await request(url)
    await res.body.arrayBuffer()
    if (res.statusCode === 200) optimized++
    else failed++
  }
  const seconds = (performance.now() - t0) / 1000
  const server = await api.stats()
  const row: Row = {
    pattern: 'official pattern: 1 per request, sequential',
    ceiling: ceilingPerMin,
    images: optimized,
    seconds,
    perMin: (optimized / seconds) * 60,
    limited: server.rateLimited,
    requests,
    failed,
    maxInWindow: server.maxInWindow,
  }
  await api.close()
  return row
}

console.log(
  `server: ${REQUESTS_PER_WINDOW} requests per ${WINDOW_MS / 1000} s per endpoint (sliding window), ${PROCESSING_MS} ms per job; ` +
    `ceiling ${ceilingPerMin} images/min (limit × 5 per request)`,
)
const lowServer = (headers: 'laravel' | 'none') => ({ requests: LOW_LIMIT, perMs: WINDOW_MS, headers })
const rows = [
  await runClient(),
  await runOfficialPattern(),
  await runClient(`server at ${LOW_LIMIT}, client assumes 120; X-RateLimit-* headers`, lowServer('laravel'), LOW_IMAGES, lowCeilingPerMin),
  await runClient(`server at ${LOW_LIMIT}, client assumes 120; no headers at all`, lowServer('none'), LOW_IMAGES, lowCeilingPerMin),
]
const table = rows.map((r) => ({
  pattern: r.pattern,
  images: r.images,
  failed: r.failed,
  seconds: r.seconds.toFixed(1),
  'images/min': Math.round(r.perMin),
  'ceiling/min': r.ceiling,
  ratio: (r.perMin / r.ceiling).toFixed(3),
  '429s': r.limited,
  requests: r.requests,
  [`max req in any ${WINDOW_MS / 1000} s`]: r.maxInWindow,
}))
console.table(table)
const ours = rows[0]!
const verdict = ours.perMin / ceilingPerMin >= 0.95 && ours.limited === 0 ? 'met' : 'NOT met'
console.log(`target (>= 0.95 of the ceiling with zero 429s): ${verdict}; speed-up over the official pattern: ${(ours.perMin / rows[1]!.perMin).toFixed(1)}x`)
const [told, untold] = [rows[2]!, rows[3]!]
const learned = told.limited === 0 && untold.limited <= 2 && told.perMin / told.ceiling >= 0.8 && untold.perMin / untold.ceiling >= 0.8
console.log(
  `learning a lower server limit (>= 0.8 of its ceiling; zero 429s with headers, at most one per endpoint without): ${learned ? 'met' : 'NOT met'} ` +
    `(headers: ${told.limited} 429s, ${(told.perMin / told.ceiling).toFixed(3)}; none: ${untold.limited} 429s, ${(untold.perMin / untold.ceiling).toFixed(3)})`,
)
