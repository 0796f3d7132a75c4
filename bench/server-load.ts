/**
 * `npm run bench -- server-load`: the compatible server under steady load, on loopback, in its own process.
 *
 * 1. Load: 20 keys in closed loops send one-image jobs (submit, long-poll the result, again) for
 *    BENCH_SECONDS (default 60) on a server with 2 workers; a 21st key sends a 5-image job every 10 s.
 *    Prints p50/p95 per job size, the longest wait of any job, 504s, and the server's RSS before/after.
 *    The loops stop by themselves; jobs still out are awaited up to the API's 300 s job timeout.
 * 2. Largest images: two solid 100-megapixel PNGs in one request, on a server with default settings:
 *    the server's peak RSS (it was 4.0 GB before the pixel budget).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import { FormData, request } from 'undici'

const child = fileURLToPath(new URL('./_server-load-child.ts', import.meta.url))
const image = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../test/fixtures/images/${name}`, import.meta.url)))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60)
const KEYS = 20
const BIG_EVERY_MS = 10_000
/** Nothing waits longer than the API's own job timeout, plus the long-poll's slack. */
const DRAIN_CAP_MS = 330_000

interface Server {
  base: string
  keys: string[]
  memory(): Promise<{ rss: number; maxRss: number }>
  close(): Promise<void>
}

async function startServer(workers: string, accounts: number): Promise<Server> {
  const proc: ChildProcess = fork(child, [workers, String(accounts)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const ready = await new Promise<{ base: string; keys: string[] }>((resolve, reject) => {
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) resolve(JSON.parse(line) as { base: string; keys: string[] })
    })
    proc.on('exit', (code) => reject(new Error(`the server exited with ${code}`)))
  })
  return {
    ...ready,
    memory: () =>
      new Promise((resolve) => {
        proc.once('message', (m) => resolve(m as { rss: number; maxRss: number }))
        proc.send('memory')
      }),
    close: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
        proc.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        proc.send('close')
      }),
  }
}

async function api(url: string, key: string, body?: FormData): Promise<{ code: number; process_id?: string }> {
  const res = await request(url, { method: body ? 'POST' : 'GET', headers: { 'x-api-key': key }, body, bodyTimeout: 0, headersTimeout: 0 })
  return (await res.body.json()) as { code: number; process_id?: string }
}

/** Submit, then long-poll until the job ends; the time from submit to the answer, and its code. */
async function job(base: string, key: string, images: Buffer[], names: string[]): Promise<{ ms: number; code: number }> {
  const form = new FormData()
  form.set('type', 'files')
  images.forEach((data, i) => form.set(`file${i + 1}`, new Blob([data]), names[i]!))
  const started = performance.now()
  const submitted = await api(`${base}/v1/optimize`, key, form)
  if (submitted.code !== 202) return { ms: performance.now() - started, code: submitted.code }
  for (;;) {
    const answer = await api(`${base}/v1/optimize/${submitted.process_id}/result?timeout=60`, key)
    if (answer.code !== 202) return { ms: performance.now() - started, code: answer.code }
  }
}

const mb = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MB`
const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN

// 1. Load
{
  const server = await startServer('2', KEYS + 1)
  const small = image('palette_color.png')
  const big = image('rocket.jpg')
  const before = await server.memory()
  const until = performance.now() + SECONDS * 1000
  const results: Record<1 | 5, { ms: number; code: number }[]> = { 1: [], 5: [] }
  const loops = server.keys.slice(0, KEYS).map(async (key) => {
    while (performance.now() < until) results[1].push(await job(server.base, key, [small], ['palette.png']))
  })
  const bigJobs: Promise<void>[] = []
  const bigKey = server.keys[KEYS]!
  // The first 5-image job once the loops are busy, then every 10 s.
  for (let at = 2_000; at < SECONDS * 1000; at += BIG_EVERY_MS) {
    bigJobs.push(
      new Promise<void>((resolve) => setTimeout(resolve, at)).then(async () => {
        results[5].push(await job(server.base, bigKey, Array(5).fill(big), [1, 2, 3, 4, 5].map((n) => `photo${n}.jpg`)))
      }),
    )
  }
  const drained = await Promise.race([
    Promise.all([...loops, ...bigJobs]).then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), SECONDS * 1000 + DRAIN_CAP_MS)),
  ])
  const after = await server.memory()
  await server.close()
  console.log(`load: ${KEYS} keys in closed loops of 1-image jobs + one 5-image job every ${BIG_EVERY_MS / 1000} s, ${SECONDS} s, 2 workers`)
  console.log('job size | jobs | p50     | p95     | longest | not 200')
  for (const size of [1, 5] as const) {
    const r = results[size]
    const ms = r.map((x) => x.ms)
    console.log(
      `${String(size).padEnd(8)} | ${String(r.length).padEnd(4)} | ${s(pct(ms, 50)).padEnd(7)} | ${s(pct(ms, 95)).padEnd(7)} | ${s(Math.max(...ms)).padEnd(7)} | ${r.filter((x) => x.code !== 200).map((x) => x.code).join(',') || 'none'}`,
    )
  }
  const all = [...results[1], ...results[5]].map((x) => x.ms)
  console.log(`longest wait of any job: ${s(Math.max(...all))}${drained ? '' : ' (some jobs still out at the drain cap)'}`)
  console.log(`server RSS: ${mb(before.rss)} before, ${mb(after.rss)} after, peak ${mb(after.maxRss)}`)
}

// 2. Largest images
{
  const solid = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#4a7a3c' } }).png().toBuffer()
  const server = await startServer('default', 1)
  const before = await server.memory()
  const started = performance.now()
  const answer = await job(server.base, server.keys[0]!, [solid, solid], ['solid1.png', 'solid2.png'])
  const after = await server.memory()
  await server.close()
  console.log(`\nlargest images: two solid 100-megapixel PNGs (${mb(solid.length)} each) in one request, default settings`)
  console.log(`answer ${answer.code} after ${s(performance.now() - started)}; server RSS ${mb(before.rss)} before, peak ${mb(after.maxRss)}`)
}
