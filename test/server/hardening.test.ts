import { connect } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createMegaOptimServer } from '../../src/server/server.ts'
import { loadDefaultEngine } from '../../src/server/engine.ts'
import type { EngineLike } from '../../src/server/options.ts'
import { call, files, fixture, localServer, optimizeAndWait, startServer, tempDir, waitResult, type Started } from './helpers.ts'

async function start(...args: Parameters<typeof startServer>): Promise<Started> {
  const s = await startServer(...args)
  onTestFinished(() => s.close())
  return s
}

/** Writes raw bytes to the server (half-closing when `end`), and reads the whole answer. */
function raw(base: string, text: string | Buffer, end = true): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(text)
      if (end) socket.end()
    })
    let answer = ''
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => {
      const [head = '', ...rest] = answer.split('\r\n\r\n')
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), body: rest.join('\r\n\r\n') })
    })
  })
}

const envelope400 = { status: 'error', code: 400, errors: [expect.any(String)] }

describe('every error in the envelope', () => {
  it('a body cut off mid-request', async () => {
    const s = await start()
    const body = 'type=url&url=http%3A%2F%2Fexample.com%2Fa.png'
    const answer = await raw(
      s.base,
      `POST /v1/optimize HTTP/1.1\r\nHost: x\r\nX-API-KEY: ${s.key}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\n${body}`,
    )
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual(envelope400)
  })

  it('a multipart body cut off mid-request', async () => {
    const s = await start()
    const part = `--XX\r\nContent-Disposition: form-data; name="type"\r\n\r\nfile\r\n--XX\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n${'A'.repeat(100)}`
    const answer = await raw(
      s.base,
      `POST /v1/optimize HTTP/1.1\r\nHost: x\r\nX-API-KEY: ${s.key}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 5000\r\n\r\n${part}`,
    )
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual(envelope400)
  })

  it('a 20 KB URL', async () => {
    const s = await start()
    const answer = await raw(s.base, `GET /v1/optimize/${'a'.repeat(20_000)}/result HTTP/1.1\r\nHost: x\r\nX-API-KEY: ${s.key}\r\n\r\n`, false)
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual(envelope400)
    expect(JSON.parse(answer.body).errors[0]).toContain('16 KB')
  })

  it('a missing Host header', async () => {
    const s = await start()
    const answer = await raw(s.base, 'GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n', false)
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual({ status: 'error', code: 400, errors: ['Bad request: the Host header is missing (HTTP/1.1 requires it).'] })
  })
})

describe('ids, keys and links', () => {
  it('job ids are matched case-insensitively', async () => {
    const s = await start()
    const submitted = await call(`${s.endpoint}/optimize`, { key: s.key, body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }) })
    const id = (submitted.json.process_id as string).toUpperCase()
    const done = await waitResult(s.endpoint, id, s.key)
    expect(done.json).toMatchObject({ status: 'ok', code: 200, id: id.toLowerCase() })
  })

  it('a key over 128 characters is reported as too long, not as missing', async () => {
    const s = await start()
    const answer = await call(`${s.endpoint}/users/info`, { key: 'k'.repeat(129) })
    expect(answer.json).toEqual({
      status: 'error',
      code: 401,
      errors: ['Invalid API key: it is 129 characters long, more than 128; check the key you were given (X-API-KEY header).'],
    })
    expect((await call(`${s.endpoint}/users/info`, { key: '' })).json.errors).toEqual(['Missing API key: send it in the X-API-KEY header.'])
  })

  it('download links never take a spoofed Host; with trustProxy they follow the proxy\'s X-Forwarded-Host', async () => {
    const submitWithHost = async (s: Started, headers: string): Promise<string> => {
      const form = 'type=url&url=' + encodeURIComponent(`${upstream.url}/horse.png`)
      const answer = await raw(
        s.base,
        `POST /v1/optimize HTTP/1.1\r\n${headers}X-API-KEY: ${s.key}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`,
        false,
      )
      return JSON.parse(answer.body).process_id
    }
    const upstream = await localServer((_req, res) => res.end(fixture('horse.png')))
    onTestFinished(() => upstream.close())
    const plain = await start({ allowPrivateUrls: true })
    const id = await submitWithHost(plain, 'Host: evil.example\r\n')
    const done = await waitResult(plain.endpoint, id, plain.key)
    expect(done.json.result[0].url.startsWith(`${plain.base}/image/`)).toBe(true)
    // Read back with a spoofed Host too: still the server's own address.
    const again = await raw(plain.base, `GET /v1/optimize/${id}/result HTTP/1.1\r\nHost: evil.example\r\nX-API-KEY: ${plain.key}\r\nConnection: close\r\n\r\n`, false)
    expect(JSON.parse(again.body).result[0].url.startsWith(`${plain.base}/image/`)).toBe(true)

    const proxied = await start({ allowPrivateUrls: true, trustProxy: true })
    const viaProxy = await submitWithHost(proxied, 'Host: 127.0.0.1\r\nX-Forwarded-Host: images.example.com\r\nX-Forwarded-Proto: https\r\n')
    const result = await waitResult(proxied.endpoint, viaProxy, proxied.key)
    expect(result.json.result[0].url.startsWith(`${proxied.base}/image/`)).toBe(true)
    const read = await raw(
      proxied.base,
      `GET /v1/optimize/${viaProxy}/result HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Host: images.example.com\r\nX-Forwarded-Proto: https\r\nX-API-KEY: ${proxied.key}\r\nConnection: close\r\n\r\n`,
      false,
    )
    expect(JSON.parse(read.body).result[0].url.startsWith('https://images.example.com/image/')).toBe(true)
  })

  it('createAccount() before listen() takes the data-dir lock', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const first = createMegaOptimServer({ dataDir: tmp.dir })
    onTestFinished(() => first.close())
    await first.createAccount({ name: 'A', email: 'a@example.com', tokens: 1 })
    const second = createMegaOptimServer({ dataDir: tmp.dir })
    onTestFinished(() => second.close())
    await expect(second.listen()).rejects.toThrow(`Another megaoptim server (pid ${process.pid}) is using ${tmp.dir}`)
    await expect(second.createAccount({ name: 'B', email: 'b@example.com', tokens: 1 })).rejects.toThrow('Another megaoptim server')
    await first.close()
    // Released on close: the next one starts.
    await second.listen()
    expect((await second.createAccount({ name: 'B', email: 'b@example.com', tokens: 1 })).tokens).toBe(1)
  })
})

describe('no URL credentials in any stored text, answer, callback or log line', () => {
  it('a redirect loop behind user:pass@ leaves the password nowhere', async () => {
    const logged: string[] = []
    const original = console.error
    console.error = (...args: unknown[]) => void logged.push(args.map(String).join(' '))
    onTestFinished(() => void (console.error = original))
    const loop = await localServer((_req, res) => {
      res.statusCode = 302
      res.setHeader('location', '/again')
      res.end()
    })
    onTestFinished(() => loop.close())
    const received: string[] = []
    // A callback receiver that fails once, so that its attempts are logged.
    const hook = await localServer((_req, res, body) => {
      received.push(body.toString())
      res.statusCode = received.length === 1 ? 500 : 200
      res.end()
    })
    onTestFinished(() => hook.close())
    const s = await start({ allowPrivateUrls: true, callbackRetryDelaysMs: [10] })
    const secretUrl = loop.url.replace('http://', 'http://alice:s3cret@') + '/img.png'
    const done = await optimizeAndWait(s, { type: 'url', url: secretUrl, callback_url: `${hook.url}/hook` })
    expect(done.json.result[0].error).toMatch(/Too many redirects fetching http:\/\/127\.0\.0\.1:\d+\/img\.png/)
    await s.server.pendingCallbacks()
    expect(received).toHaveLength(2)
    const refused = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'url', url: 'ftp://alice:s3cret@example.com/x.png' } })
    expect(refused.json.code).toBe(400)
    const withCreds = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'url', url: secretUrl, callback_url: `http://bob:hunter2@${new URL(hook.url).host}/hook` } })
    expect(withCreds.json).toEqual({ status: 'error', code: 400, errors: [expect.stringContaining('callback_url must not carry credentials')] })
    const store = await s.server.store()
    const stored = JSON.stringify(store.getJob(done.json.id))
    for (const text of [done.text, stored, ...received, refused.text, ...logged]) {
      expect(text).not.toContain('s3cret')
      expect(text).not.toContain('alice')
    }
    expect(logged.some((l) => l.includes('callback for job'))).toBe(true)
  })
})

describe('memory and CPU bounded', () => {
  it('the workers share a pixel budget: an image waits, undecoded, until its pixels fit', async () => {
    const real = await loadDefaultEngine()
    let active = 0
    let most = 0
    const counting: EngineLike = {
      ...real,
      optimizeImage: async (...args) => {
        most = Math.max(most, ++active)
        try {
          return await real.optimizeImage(...args)
        } finally {
          active--
        }
      },
    }
    const png = fixture('chelsea.png')
    const sharp = (await import('sharp')).default
    const { width, height } = await sharp(png).metadata()
    const pixels = width! * height!
    const send = (s: Started): Promise<unknown> =>
      optimizeAndWait(s, files({ file1: ['a.png', png], file2: ['b.png', png], file3: ['c.png', png] }, { type: 'files' }))
    // Room for one image at a time: three images, two workers, never two decoded at once.
    const tight = await start({ engine: counting, workers: 2, pixelBudget: Math.floor(pixels * 1.5) })
    await send(tight)
    expect(most).toBe(1)
    expect((await call(`${tight.base}/status`)).json.jobs.pixels).toEqual({ capacity: Math.floor(pixels * 1.5), used: 0, peak: pixels, waiting: 0 })
    // Room for two: both workers are used.
    most = 0
    const roomy = await start({ engine: counting, workers: 2, pixelBudget: pixels * 2 })
    await send(roomy)
    expect(most).toBe(2)
  })

  it('a pathological image (a small 9999x9999 PNG) costs its time budget, then answers "no gain" with the original', async () => {
    const sharp = (await import('sharp')).default
    const png = await sharp({ create: { width: 9999, height: 9999, channels: 3, background: '#336699' } }).png({ compressionLevel: 9 }).toBuffer()
    const s = await start({ itemTimeoutMs: 500 }, 5)
    const done = await optimizeAndWait(s, files({ file1: ['bomb.png', png] }, { type: 'files' }))
    expect(done.json.code).toBe(200)
    expect(done.json.result[0]).toMatchObject({
      success: 0,
      file_name: 'bomb.png',
      original_size: png.length,
      optimized_size: png.length,
      url: null,
      error: 'Not optimized within the 0.5 s time budget of one image: keep the original; no token was charged.',
    })
    expect(done.json.user.tokens).toBe(5)
  })
})
