import { describe, expect, it, onTestFinished } from 'vitest'
import { request } from 'undici'
import { createMegaOptimServer } from '../../src/server/server.ts'
import { call, files, fixture, localServer, startServer, tempDir, waitResult } from './helpers.ts'


interface Received {
  contentType: string | undefined
  body: unknown
}

async function receiver(failFirst: number) {
  const received: Received[] = []
  let calls = 0
  const srv = await localServer((req, res, body) => {
    calls++
    if (calls <= failFirst) {
      res.statusCode = 500
      return res.end('try again')
    }
    received.push({ contentType: req.headers['content-type'], body: JSON.parse(body.toString()) })
    res.end('ok')
  })
  onTestFinished(() => srv.close())
  return { srv, received, calls: () => calls }
}

describe('callback_url', () => {
  it('POSTs the /result body as JSON, retrying after a failure', async () => {
    const r = await receiver(1)
    const s = await startServer({ allowPrivateUrls: true, callbackRetryDelaysMs: [50, 50] }, 10)
    onTestFinished(() => s.close())
    const submitted = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: `${r.srv.url}/hook?job=1` }),
    })
    const result = await waitResult(s.endpoint, submitted.json.process_id, s.key)
    await s.server.pendingCallbacks()
    expect(r.calls()).toBe(2)
    expect(r.received).toHaveLength(1)
    expect(r.received[0]!.contentType).toBe('application/json')
    // Same body as /result: `id`, not `process_id`, and the result stays available afterwards.
    expect(r.received[0]!.body).toEqual(result.json)
    expect(r.received[0]!.body).toMatchObject({ status: 'ok', code: 200, id: submitted.json.process_id })
    expect((await call(`${s.endpoint}/optimize/${submitted.json.process_id}/result`, { key: s.key })).json).toEqual(result.json)
  })

  it('gives up after the configured attempts without blocking anything', async () => {
    const r = await receiver(100)
    const s = await startServer({ allowPrivateUrls: true, callbackRetryDelaysMs: [20, 20] }, 10)
    onTestFinished(() => s.close())
    const errors: unknown[][] = []
    const original = console.error
    console.error = (...args: unknown[]) => void errors.push(args)
    try {
      const submitted = await call(`${s.endpoint}/optimize`, {
        key: s.key,
        body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: r.srv.url }),
      })
      await waitResult(s.endpoint, submitted.json.process_id, s.key)
      await s.server.pendingCallbacks()
    } finally {
      console.error = original
    }
    expect(r.calls()).toBe(3)
    expect(errors).toHaveLength(3)
    expect(String(errors[2]![0])).toMatch(/attempt 3: HTTP 500/)
  })

  it('a failed job is reported to the callback as the 504 envelope with its id', async () => {
    const r = await receiver(0)
    const s = await startServer({ allowPrivateUrls: true, jobTimeoutMs: 100, jobDelayMs: 10_000 }, 10)
    onTestFinished(() => s.close())
    const submitted = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: r.srv.url }),
    })
    await waitResult(s.endpoint, submitted.json.process_id, s.key)
    await s.server.pendingCallbacks()
    expect(r.received.map((x) => x.body)).toEqual([
      { status: 'error', code: 504, errors: ['The job did not finish within 0.1 s.'], id: submitted.json.process_id },
    ])
  })

  it('a callback a shutdown interrupted is delivered after the restart (SQLite)', async () => {
    const r = await receiver(1)
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    // The retry waits ten minutes: only a restart can deliver it within the test.
    const first = await startServer({ dataDir: tmp.dir, allowPrivateUrls: true, callbackRetryDelaysMs: [600_000] }, 10)
    const errors: unknown[][] = []
    const original = console.error
    console.error = (...args: unknown[]) => void errors.push(args)
    let id: string
    try {
      const submitted = await call(`${first.endpoint}/optimize`, {
        key: first.key,
        body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: r.srv.url }),
      })
      id = submitted.json.process_id as string
      await waitResult(first.endpoint, id, first.key)
      for (let i = 0; i < 500 && r.calls() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
      expect(r.calls()).toBe(1)
      await first.close()
    } finally {
      console.error = original
    }
    expect(errors).toHaveLength(1)

    const second = createMegaOptimServer({ dataDir: tmp.dir, allowPrivateUrls: true, callbackRetryDelaysMs: [10] })
    onTestFinished(() => second.close())
    await second.listen()
    await second.pendingCallbacks()
    expect(r.calls()).toBe(2)
    expect(r.received.map((x) => (x.body as { id: string; code: number }).id)).toEqual([id])
    expect((await (await second.store()).getJob(id))?.callbackState).toBe('delivered')
    expect((await second.store()).pendingCallbacks()).toEqual([])
  })
})

describe('callback and printed addresses on a wildcard bind', () => {
  it('behind a trusted proxy the callback links use the address the client submitted to, never 0.0.0.0', async () => {
    const r = await receiver(0)
    const server = createMegaOptimServer({ allowPrivateUrls: true, callbackRetryDelaysMs: [20], workers: 1, trustProxy: true })
    onTestFinished(() => server.close())
    const base = await server.listen({ host: '0.0.0.0', port: 0 })
    // What `serve` prints must be a URL one can connect to.
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(server.endpoint).toBe(`${base}/v1`)
    const port = new URL(base).port
    const account = await server.createAccount({ name: 'W', email: 'w@example.com', tokens: 10 })
    const form = files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: `${r.srv.url}/hook` })
    // The client reached the server under another name (a LAN address, a proxy's Host).
    const res = await request(`${base}/v1/optimize`, {
      method: 'POST',
      headers: { 'x-api-key': account.apiKey, host: `images.lan.test:${port}` },
      body: form,
    })
    const submitted = (await res.body.json()) as { code: number; process_id: string }
    expect(submitted.code).toBe(202)
    await waitResult(`${base}/v1`, submitted.process_id, account.apiKey)
    await server.pendingCallbacks()
    expect(r.received).toHaveLength(1)
    const item = (r.received[0]!.body as { result: { success: number; url: string }[] }).result[0]!
    expect(item.success).toBe(1)
    expect(item.url.startsWith(`http://images.lan.test:${port}/image/`)).toBe(true)
  })

  it('without trustProxy a Host header never reaches a callback link: the reachable listening address does', async () => {
    const r = await receiver(0)
    const server = createMegaOptimServer({ allowPrivateUrls: true, callbackRetryDelaysMs: [20], workers: 1 })
    onTestFinished(() => server.close())
    const base = await server.listen({ host: '0.0.0.0', port: 0 })
    const account = await server.createAccount({ name: 'W', email: 'w@example.com', tokens: 10 })
    const form = files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: `${r.srv.url}/hook` })
    const res = await request(`${base}/v1/optimize`, { method: 'POST', headers: { 'x-api-key': account.apiKey, host: 'evil.example' }, body: form })
    const submitted = (await res.body.json()) as { code: number; process_id: string }
    await waitResult(`${base}/v1`, submitted.process_id, account.apiKey)
    await server.pendingCallbacks()
    const item = (r.received[0]!.body as { result: { url: string }[] }).result[0]!
    expect(item.url.startsWith(`${base}/image/`)).toBe(true)
  })
})
