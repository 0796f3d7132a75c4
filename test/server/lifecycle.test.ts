import net from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { request } from 'undici'
import { createMegaOptimServer, startEmbeddedServer } from '../../src/server.ts'
import { createOutboundAgent } from '../../src/server/net-guard.ts'
import { resolveServerOptions, type EngineLike } from '../../src/server/options.ts'
import { openSqliteStore } from '../../src/server/store/sqlite.ts'
import { call, files, fixture, localServer, startServer, tempDir, waitResult } from './helpers.ts'


describe('startEmbeddedServer()', () => {
  it('listens on loopback with an unlimited key and a rate limit no build reaches', async () => {
    const embedded = await startEmbeddedServer()
    onTestFinished(() => embedded.close())
    expect(embedded.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
    expect(embedded.apiKey).toMatch(/^[A-Za-z0-9]{32}$/)
    expect(embedded.rateLimit).toBe(1_000_000)
    const answers = await Promise.all(Array.from({ length: 200 }, () => call(`${embedded.endpoint}/users/info`, { key: embedded.apiKey })))
    expect(answers.every((a) => a.json.code === 200)).toBe(true)
    expect(answers[0]!.json.result.tokens).toBe(-1)
    expect(embedded.stats.requests['GET /v1/users/info']).toBe(200)

    const submitted = await call(`${embedded.endpoint}/optimize`, {
      key: embedded.apiKey,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }),
    })
    const done = await waitResult(embedded.endpoint, submitted.json.process_id, embedded.apiKey)
    expect(done.json.result[0].success).toBe(1)
    expect(done.json.user.tokens).toBe(-1)
  })

  it('close() answers pending long-polls and does not wait for a job that cannot finish soon', async () => {
    const embedded = await startEmbeddedServer({ jobDelayMs: 600_000 })
    const submitted = await call(`${embedded.endpoint}/optimize`, {
      key: embedded.apiKey,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }),
    })
    const poll = call(`${embedded.endpoint}/optimize/${submitted.json.process_id}/result?timeout=300`, { key: embedded.apiKey })
    // Close only once the poll is waiting on the server.
    for (let i = 0; i < 500 && !embedded.stats.requests['GET /v1/optimize/:id/result']; i++) {
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(embedded.stats.requests['GET /v1/optimize/:id/result']).toBe(1)
    await embedded.close()
    expect((await poll).json).toEqual({ status: 'processing', code: 202, process_id: submitted.json.process_id })
    await embedded.close()
  })

  it('close() lets a running item finish and settles its job', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    let started!: () => void
    const itemStarted = new Promise<void>((resolve) => (started = resolve))
    // An engine that says when it starts, then takes a while: close() arrives mid-item, deterministically.
    const slow: EngineLike = {
      version: 'slow-engine',
      sniffFormat: () => 'png',
      isEngineError: (_e: unknown): _e is Error => false,
      optimizeImage: async (input) => {
        started()
        await new Promise((r) => setTimeout(r, 300))
        return { format: 'png', originalSize: input.length, data: input.subarray(0, input.length / 2), width: 1, height: 1, webp: null }
      },
    }
    const s = await startServer({ dataDir: tmp.dir, engine: slow }, 5)
    const submitted = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }),
    })
    expect(submitted.json.code).toBe(202)
    await itemStarted
    await s.close()
    const store = await openSqliteStore(tmp.dir)
    try {
      const job = store.getJob(submitted.json.process_id)
      expect(job?.status).toBe('done')
      expect(job?.result?.[0]?.success).toBe(1)
      expect(store.getAccount(s.key)?.tokens).toBe(4)
    } finally {
      store.close()
    }
  })
})

describe('close() with a stalled client', () => {
  it('does not wait for an upload that never ends', async () => {
    const s = await startServer({ closeTimeoutMs: 200 })
    const { port } = new URL(s.base)
    const socket = net.connect(Number(port), '127.0.0.1')
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(
      `POST /v1/optimize HTTP/1.1\r\nHost: x\r\nX-API-KEY: ${s.key}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 999999\r\n\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc`,
    )
    await new Promise((r) => setTimeout(r, 100))
    const closedSocket = new Promise((resolve) => socket.once('close', resolve))
    await s.close()
    // The server hung up on the stalled client instead of waiting for the rest of its body.
    await closedSocket
    expect(socket.destroyed).toBe(true)
  })
})

describe('publicUrl', () => {
  it('is the base of the endpoint and of every download link', async () => {
    const s = await startServer({ publicUrl: 'https://img.example.com/' })
    onTestFinished(() => s.close())
    expect(s.endpoint).toBe('https://img.example.com/v1')
    const submitted = await call(`${s.base}/v1/optimize`, {
      key: s.key,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }),
    })
    const done = await waitResult(`${s.base}/v1`, submitted.json.process_id, s.key)
    expect(done.json.result[0].url).toMatch(/^https:\/\/img\.example\.com\/image\/[0-9a-f]{32}\/horse\.png$/)
  })
})

describe('listen()', () => {
  it('works on IPv6 loopback and gives bracketed URLs', async () => {
    const server = createMegaOptimServer()
    onTestFinished(() => server.close())
    const base = await server.listen({ host: '::1', port: 0 })
    expect(base).toMatch(/^http:\/\/\[::1\]:\d+$/)
    expect(server.endpoint).toBe(`${base}/v1`)
    expect((await call(`${base}/ping`)).json).toEqual({ status: 'ok', code: 200 })
  })
})

describe('health rate limit', () => {
  it('/ping and /status are limited per IP at their own rate', async () => {
    const s = await startServer({ healthRateLimit: 2 })
    onTestFinished(() => s.close())
    expect((await call(`${s.base}/ping`)).json.code).toBe(200)
    expect((await call(`${s.base}/ping`)).json.code).toBe(200)
    const limited = await call(`${s.base}/ping`)
    expect(limited.json.code).toBe(429)
    expect(limited.headers['retry-after']).toBeDefined()
    expect((await call(`${s.base}/status`)).json.code).toBe(200)
  })
})

describe('the outbound agent', () => {
  it('re-checks addresses at connect time (a name that resolves to loopback is refused by the agent itself)', async () => {
    const target = await localServer((_req, res) => res.end('secret'))
    onTestFinished(() => target.close())
    const agent = createOutboundAgent({ allowPrivateUrls: false, timeoutMs: 5_000 })
    onTestFinished(() => agent.close())
    const port = new URL(target.url).port
    await expect(request(`http://localhost:${port}/`, { dispatcher: agent })).rejects.toThrow(/loopback, private or link-local/)
    expect(target.hits).toBe(0)
    const open = createOutboundAgent({ allowPrivateUrls: true, timeoutMs: 5_000 })
    onTestFinished(() => open.close())
    const res = await request(`http://localhost:${port}/`, { dispatcher: open })
    expect(await res.body.text()).toBe('secret')
  })
})

describe('options', () => {
  it('are validated with exact messages and never mutated', () => {
    expect(() => resolveServerOptions({ rateLimit: 0 })).toThrow('rateLimit must be a whole number >= 1, got 0')
    expect(() => resolveServerOptions({ workers: 1.5 })).toThrow('workers must be a whole number >= 1, got 1.5')
    expect(() => resolveServerOptions({ publicUrl: 'ftp://x' })).toThrow('publicUrl must be an http(s) URL, got "ftp://x"')
    expect(() => resolveServerOptions({ dataDir: '' })).toThrow('dataDir must be a non-empty string, got ""')
    const input = { rateLimit: 10, callbackRetryDelaysMs: [1, 2] }
    const resolved = resolveServerOptions(input)
    resolved.callbackRetryDelaysMs.push(3)
    expect(input).toEqual({ rateLimit: 10, callbackRetryDelaysMs: [1, 2] })
    expect(resolveServerOptions({ publicUrl: 'https://img.example.com/' }).publicUrl).toBe('https://img.example.com')
  })
})
