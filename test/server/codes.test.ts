import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { request } from 'undici'
import { parseTimeout } from '../../src/server/routes/result.ts'
import type { EngineLike } from '../../src/server/options.ts'
import { loadDefaultEngine } from '../../src/server/engine.ts'
import { EngineError } from '../../src/engine/index.ts'
import { call, files, fixture, optimizeAndWait, startServer, tempDir, waitResult, type Started } from './helpers.ts'


async function start(...args: Parameters<typeof startServer>): Promise<Started> {
  const s = await startServer(...args)
  onTestFinished(() => s.close())
  return s
}

const onePng = (): ReturnType<typeof files> => files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' })

describe('every code of the contract, through real HTTP', () => {
  it('202 while processing, then 200; ?timeout300 (no "=") means the default wait', async () => {
    const s = await start({ jobDelayMs: 5000 })
    const submitted = await call(`${s.endpoint}/optimize`, { key: s.key, body: onePng() })
    const id = submitted.json.process_id as string
    const early = await call(`${s.endpoint}/optimize/${id}/result?timeout=1`, { key: s.key })
    expect(early.status).toBe(200)
    expect(early.json).toEqual({ status: 'processing', code: 202, process_id: id })
    // Clamped to 1 s rather than "no wait" or an error.
    expect((await call(`${s.endpoint}/optimize/${id}/result?timeout=0`, { key: s.key })).json.code).toBe(202)
    // The official Node client's malformed query: the default (120 s) wait covers the remaining delay.
    const done = await call(`${s.endpoint}/optimize/${id}/result?timeout300`, { key: s.key })
    expect(done.json).toMatchObject({ status: 'ok', code: 200, id })
  })

  it('parses timeout as the contract says', () => {
    expect(parseTimeout(undefined)).toBe(120)
    expect(parseTimeout('')).toBe(120)
    expect(parseTimeout('abc')).toBe(120)
    expect(parseTimeout('-5')).toBe(120)
    expect(parseTimeout('0')).toBe(1)
    expect(parseTimeout('30')).toBe(30)
    expect(parseTimeout('900')).toBe(300)
  })

  it('the timeout can also be a form field on POST', async () => {
    const s = await start({ jobDelayMs: 60_000 })
    const submitted = await call(`${s.endpoint}/optimize`, { key: s.key, body: onePng() })
    const answer = await call(`${s.endpoint}/optimize/${submitted.json.process_id}/result`, { key: s.key, body: { timeout: '1' } })
    expect(answer.json.code).toBe(202)
  })

  it('429 with Retry-After (HTTP 200) past the limit, per key and per endpoint', async () => {
    const s = await start({ rateLimit: 3 })
    for (let i = 0; i < 3; i++) {
      const ok = await call(`${s.endpoint}/users/info`, { key: s.key })
      expect(ok.json.code).toBe(200)
      // Laravel style, as the hosted API: the limit and what is left on every answer, no reset until a 429.
      expect(ok.headers['x-ratelimit-limit']).toBe('3')
      expect(ok.headers['x-ratelimit-remaining']).toBe(String(2 - i))
      expect(ok.headers['x-ratelimit-reset']).toBeUndefined()
    }
    const before = Math.floor(Date.now() / 1000)
    const limited = await call(`${s.endpoint}/users/info`, { key: s.key })
    // The reset is a Unix time, within the minute.
    const reset = Number(limited.headers['x-ratelimit-reset'])
    expect(reset).toBeGreaterThan(before)
    expect(reset).toBeLessThanOrEqual(before + 61)
    expect(limited.headers['x-ratelimit-remaining']).toBe('0')
    expect(limited.status).toBe(200)
    expect(limited.json).toEqual({ status: 'error', code: 429, errors: [expect.stringMatching(/Rate limit exceeded: 3 requests per minute/)] })
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    // Another endpoint of the same key has its own counter...
    expect((await call(`${s.endpoint}/optimize/00000000-0000-4000-8000-000000000000/result`, { key: s.key })).json.code).toBe(404)
    // ...and so has another key on the same endpoint.
    const other = await s.server.createAccount({ name: 'B', email: 'b@example.com', tokens: 1 })
    expect((await call(`${s.endpoint}/users/info`, { key: other.apiKey })).json.code).toBe(200)
  })

  it('GET and POST /result share one counter (one endpoint)', async () => {
    const s = await start({ rateLimit: 2 })
    const url = `${s.endpoint}/optimize/00000000-0000-4000-8000-000000000000/result`
    expect((await call(url, { key: s.key })).json.code).toBe(404)
    expect((await call(url, { key: s.key, method: 'POST' })).json.code).toBe(404)
    expect((await call(url, { key: s.key })).json.code).toBe(429)
  })

  it('455 when the balance is below the number of images; nothing is queued or charged', async () => {
    const s = await start({}, 1)
    const body = files({ file1: ['a.png', fixture('horse.png')], file2: ['b.png', fixture('palette_color.png')] }, { type: 'files' })
    const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body })
    expect(answer.json).toEqual({ status: 'error', code: 455, errors: [expect.stringContaining('Not enough tokens')] })
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens).toBe(1)
    expect(s.server.stats.requests['POST /v1/optimize']).toBe(1)
    const status = await call(`${s.base}/status`)
    expect(status.json.jobs).toMatchObject({ running: 0, queuedItems: 0, activeItems: 0 })
  })

  it('504 when a job exceeds the job timeout; its tokens come back', async () => {
    const s = await start({ jobTimeoutMs: 200, jobDelayMs: 30_000 }, 3)
    const submitted = await call(`${s.endpoint}/optimize`, { key: s.key, body: onePng() })
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens).toBe(2)
    const answer = await call(`${s.endpoint}/optimize/${submitted.json.process_id}/result?timeout=30`, { key: s.key })
    expect(answer.json).toEqual({ status: 'error', code: 504, errors: ['The job did not finish within 0.2 s.'] })
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens).toBe(3)
  })

  it('the job timeout runs from when a job gets to work, not while it waits in the pool', async () => {
    // One worker, items of 300 ms each, 8 jobs: the last one waits ~2.1 s, longer than the 2 s timeout.
    const slow: EngineLike = {
      version: 'slow-engine',
      sniffFormat: () => 'png',
      isEngineError: (_e: unknown): _e is Error => false,
      optimizeImage: async (input) => {
        await new Promise((r) => setTimeout(r, 300))
        return { format: 'png', originalSize: input.length, data: input.subarray(0, input.length / 2), width: 1, height: 1, webp: null }
      },
    }
    const s = await start({ engine: slow, workers: 1, jobTimeoutMs: 2_000 })
    const submitted = await Promise.all(Array.from({ length: 8 }, () => call(`${s.endpoint}/optimize`, { key: s.key, body: onePng() })))
    const results = await Promise.all(submitted.map((a) => waitResult(s.endpoint, a.json.process_id, s.key)))
    expect(results.map((r) => r.json.code)).toEqual(Array(8).fill(200))
  })

  it('504 when the engine crashes (not a bad-input EngineError)', async () => {
    const crashing: EngineLike = {
      version: 'crashing-engine',
      sniffFormat: () => 'png',
      isEngineError: (_e: unknown): _e is Error => false,
      optimizeImage: async () => {
        throw new TypeError('Cannot read properties of undefined (reading "width")')
      },
    }
    const s = await start({ engine: crashing })
    const answer = await optimizeAndWait(s, onePng())
    expect(answer.json).toEqual({
      status: 'error',
      code: 504,
      errors: [expect.stringContaining('The job failed on the server: Cannot read properties of undefined')],
    })
  })

  it('the real engine adapter: only the input\'s own faults are per-item, other EngineErrors are server faults', async () => {
    const real = await loadDefaultEngine()
    for (const code of ['ENGINE_UNSUPPORTED_FORMAT', 'ENGINE_CORRUPT_INPUT', 'ENGINE_TOO_LARGE', 'ENGINE_EMPTY_INPUT'] as const) {
      expect(real.isEngineError(new EngineError(code, 'bad input')), code).toBe(true)
    }
    for (const code of ['ENGINE_FAILED', 'ENGINE_SHARP_MISSING', 'ENGINE_ABORTED'] as const) {
      expect(real.isEngineError(new EngineError(code, 'server fault')), code).toBe(false)
    }
    expect(real.isEngineError(new TypeError('crash'))).toBe(false)
    // The real engine's own verdict on a broken file is still a per-item failure.
    await expect(real.optimizeImage(Buffer.from('not an image'), { compression: 'intelligent', webp: false, cmykToRgb: true, keepExif: false, maxWidth: 0, maxHeight: 0 })).rejects.toSatisfy(
      (e: unknown) => real.isEngineError(e),
    )
  })

  it('504 when the real engine reports its own fault (ENGINE_FAILED), classified by the real adapter', async () => {
    const real = await loadDefaultEngine()
    const failing: EngineLike = {
      ...real,
      optimizeImage: async () => {
        throw new EngineError('ENGINE_FAILED', 'Optimizing the png image failed: VipsJpeg: out of memory')
      },
    }
    const s = await start({ engine: failing })
    const answer = await optimizeAndWait(s, onePng())
    expect(answer.json).toEqual({
      status: 'error',
      code: 504,
      errors: [expect.stringContaining('The job failed on the server: Optimizing the png image failed')],
    })
  })

  it('500 when the store fails (the upload directory is not writable)', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const s = await start({ dataDir: tmp.dir }, 5)
    // Where the uploads go is now a plain file: persisting the upload fails with ENOTDIR.
    writeFileSync(path.join(tmp.dir, 'blobs'), 'not a directory')
    const errors: unknown[][] = []
    const original = console.error
    console.error = (...args: unknown[]) => void errors.push(args)
    try {
      const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body: onePng() })
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ status: 'error', code: 500, errors: [expect.stringContaining('Internal server error')] })
      expect(answer.text).not.toContain(s.key)
    } finally {
      console.error = original
    }
    // The operator sees the cause in the log (the client does not).
    expect(errors.filter((e) => /POST \/v1\/optimize: .*ENOTDIR/s.test(String(e[0])))).toHaveLength(1)
    // Nothing was reserved for the refused job.
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens).toBe(5)
  })

  it('download links expire one hour after the job finished; the sweeper deletes their files', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    let clock = Date.UTC(2030, 0, 1)
    const s = await start({ dataDir: tmp.dir, now: () => clock })
    const done = await optimizeAndWait(s, files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', webp: '1' }))
    const item = done.json.result[0]
    const { pathname } = new URL(item.url as string)
    const [, , dir, name] = pathname.split('/')
    const file = path.join(tmp.dir, 'blobs', 'out', dir!, name!)
    expect(existsSync(file)).toBe(true)
    expect(existsSync(`${file}.webp`)).toBe(true)

    clock += 3_600_000 - 1_000
    const fresh = await request(item.url as string)
    expect(fresh.statusCode).toBe(200)
    await fresh.body.dump()
    expect(await s.server.sweep()).toEqual({ downloads: 0, jobs: 0, orphans: 0 })

    clock += 1_000
    for (const url of [item.url, item.webp.url] as string[]) {
      const expired = await request(url)
      expect(expired.statusCode).toBe(404)
      expect(await expired.body.json()).toEqual({ status: 'error', code: 404, errors: [expect.stringContaining('expired')] })
    }
    expect((await s.server.sweep()).downloads).toBe(2)
    expect(existsSync(file)).toBe(false)
    expect(existsSync(`${file}.webp`)).toBe(false)
    // The uploads went when the job ended.
    expect(existsSync(path.join(tmp.dir, 'blobs', 'uploads', done.json.id))).toBe(false)
  })

  it('the sweeper removes files a crash left behind, once they are older than the grace period', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const s = await start({ dataDir: tmp.dir, jobTimeoutMs: 1_000, jobDelayMs: 600_000 })
    const submitted = await call(`${s.endpoint}/optimize`, { key: s.key, body: onePng() })
    const blobs = path.join(tmp.dir, 'blobs')
    const old = new Date(Date.now() - 10 * 60_000)
    const plant = (rel: string, when: Date): string => {
      const file = path.join(blobs, rel)
      mkdirSync(path.dirname(file), { recursive: true })
      writeFileSync(file, 'x')
      utimesSync(path.dirname(file), when, when)
      return path.dirname(file)
    }
    const orphanOut = plant('out/0123456789abcdef0123456789abcdef/a.png', old)
    const orphanUpload = plant('uploads/00000000-0000-4000-8000-000000000001/0', old)
    const freshOut = plant('out/fedcba9876543210fedcba9876543210/a.png', new Date())
    // The queued job's own uploads are old too, but the job still needs them.
    const liveUpload = path.join(blobs, 'uploads', submitted.json.process_id)
    utimesSync(liveUpload, old, old)
    expect((await s.server.sweep()).orphans).toBe(2)
    expect(existsSync(orphanOut)).toBe(false)
    expect(existsSync(orphanUpload)).toBe(false)
    expect(existsSync(freshOut)).toBe(true)
    expect(existsSync(liveUpload)).toBe(true)
  })

  it('an unknown or malformed download link is 404', async () => {
    const s = await start()
    for (const p of ['/image/0123456789abcdef0123456789abcdef/a.png', '/image/nope/a.png']) {
      const res = await request(`${s.base}${p}`)
      expect(res.statusCode).toBe(404)
      await res.body.dump()
    }
  })
})
