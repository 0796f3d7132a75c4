import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isPrivateAddress } from '../../src/server/net-guard.ts'
import { call, fixture, localServer, optimizeAndWait, startServer, type Started } from './helpers.ts'

const BLOCKED = /loopback, private or link-local/

describe('SSRF guard', () => {
  it('classifies addresses: only public unicast passes', () => {
    for (const a of [
      '127.0.0.1',
      '127.5.6.7',
      '10.0.0.1',
      '172.16.3.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '255.255.255.255',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      '::127.0.0.1',
      '::7f00:1',
      '::10.0.0.1',
      '::8.8.8.8',
      '::a9fe:a9fe',
      'not-an-ip',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true)
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isPrivateAddress(a), a).toBe(false)
    }
  })

  describe('through HTTP (allowPrivateUrls off)', () => {
    let s: Started
    let target: Awaited<ReturnType<typeof localServer>>
    beforeAll(async () => {
      s = await startServer({}, 100)
      target = await localServer((_req, res) => res.end(fixture('horse.png')))
    })
    afterAll(async () => {
      await s.close()
      await target.close()
    })

    it('refuses loopback, private, link-local and IPv4-mapped IPv6 targets per item, without connecting', async () => {
      const port = new URL(target.url).port
      const urls = [
        `http://127.0.0.1:${port}/horse.png`,
        'http://10.1.2.3/a.png',
        'http://169.254.169.254/latest/meta-data/iam.png',
        `http://[::1]:${port}/horse.png`,
        `http://[::ffff:127.0.0.1]:${port}/horse.png`,
      ]
      const done = await optimizeAndWait(s, { type: 'urls', ...Object.fromEntries(urls.map((u, i) => [`url${i + 1}`, u])) })
      expect(done.json.result).toHaveLength(5)
      for (const item of done.json.result) {
        expect(item).toMatchObject({ success: 0, url: null })
        expect(item.error).toMatch(BLOCKED)
      }
      expect(done.json.result.map((i: { file_name: string }) => i.file_name)).toEqual([
        'horse.png',
        'a.png',
        'iam.png',
        'horse.png',
        'horse.png',
      ])
      expect(target.hits).toBe(0)
      // Refused items cost nothing.
      expect(done.json.user.tokens).toBe(100)
    })

    it('refuses IPv4-compatible IPv6 ([::127.0.0.1] is ::7f00:1) without connecting', async () => {
      const port = new URL(target.url).port
      const done = await optimizeAndWait(s, {
        type: 'urls',
        url1: `http://[::127.0.0.1]:${port}/a.png`,
        url2: `http://[::7f00:1]:${port}/b.png`,
      })
      expect(done.json.result).toHaveLength(2)
      for (const item of done.json.result) {
        expect(item).toMatchObject({ success: 0, url: null })
        expect(item.error).toMatch(BLOCKED)
      }
      expect(target.hits).toBe(0)
    })

    it('sees through other spellings of loopback (decimal, octal, hex)', async () => {
      const port = new URL(target.url).port
      const done = await optimizeAndWait(s, {
        type: 'urls',
        url1: `http://2130706433:${port}/a.png`,
        url2: `http://0177.0.0.1:${port}/b.png`,
        url3: `http://0x7f.1:${port}/c.png`,
      })
      for (const item of done.json.result) expect(item.error).toMatch(BLOCKED)
      expect(target.hits).toBe(0)
    })

    it('a name that does not resolve is a per-item failure that says so', async () => {
      const done = await optimizeAndWait(s, { type: 'url', url: 'http://no-such-host.invalid/a.png' })
      expect(done.json.result[0]).toMatchObject({ success: 0, file_name: 'a.png' })
      expect(done.json.result[0].error).toMatch(/^Could not resolve no-such-host\.invalid/)
    })

    it('refuses a hostname that resolves to loopback (localhost)', async () => {
      const port = new URL(target.url).port
      const done = await optimizeAndWait(s, { type: 'url', url: `http://localhost:${port}/horse.png` })
      expect(done.json.result[0].error).toMatch(BLOCKED)
      expect(done.json.result[0].error).toMatch(/localhost/)
      expect(target.hits).toBe(0)
    })

    it('refuses a private callback_url at submit with 400', async () => {
      for (const cb of [`${target.url}/cb`, 'http://localhost/cb', 'http://[::1]/cb', 'http://192.168.0.10/cb']) {
        const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'url', url: 'http://example.com/a.png', callback_url: cb } })
        expect(answer.json, cb).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(/callback_url refused/)] })
      }
      expect(target.hits).toBe(0)
    })
  })
})

describe('url fetching (allowPrivateUrls on, against a local origin)', () => {
  let s: Started
  let origin: Awaited<ReturnType<typeof localServer>>
  const expectedAuth = `Basic ${Buffer.from('user:p@ss').toString('base64')}`
  beforeAll(async () => {
    s = await startServer({ allowPrivateUrls: true, maxFileSize: 64 * 1024 }, 100)
    origin = await localServer((req, res) => {
      if (req.url === '/private/horse.png') {
        if (req.headers.authorization !== expectedAuth) {
          res.statusCode = 401
          return res.end('auth required')
        }
        return res.end(fixture('horse.png'))
      }
      if (req.url === '/moved.png') {
        res.statusCode = 302
        res.setHeader('location', '/img/horse%20copy.png')
        return res.end()
      }
      if (req.url === '/img/horse%20copy.png') return res.end(fixture('horse.png'))
      if (req.url === '/huge.png') return res.end(Buffer.concat([fixture('horse.png'), Buffer.alloc(100 * 1024)]))
      res.statusCode = 404
      res.end()
    })
  })
  afterAll(async () => {
    await s.close()
    await origin.close()
  })

  it('fetches with Basic auth (http_user/http_pass), follows redirects, caps the size', async () => {
    const done = await optimizeAndWait(s, {
      type: 'urls',
      url1: `${origin.url}/private/horse.png`,
      url2: `${origin.url}/moved.png`,
      url3: `${origin.url}/huge.png`,
      url4: `${origin.url}/missing.png`,
      http_user: 'user',
      http_pass: 'p@ss',
    })
    const [auth, moved, huge, missing] = done.json.result
    expect(auth).toMatchObject({ success: 1, file_name: 'horse.png', original_size: fixture('horse.png').length })
    expect(moved).toMatchObject({ success: 1, file_name: 'moved.png' })
    expect(huge.success).toBe(0)
    expect(huge.error).toMatch(/65536-byte limit/)
    expect(missing.success).toBe(0)
    expect(missing.error).toMatch(/HTTP 404/)
    expect(done.json.user.tokens).toBe(98)
  })

  it('credentials written in the URL are sent as Basic auth too', async () => {
    const withCredentials = origin.url.replace('http://', 'http://user:p%40ss@')
    const done = await optimizeAndWait(s, { type: 'url', url: `${withCredentials}/private/horse.png` })
    expect(done.json.result[0]).toMatchObject({ success: 1, file_name: 'horse.png' })
    // Settled jobs keep no credentials.
    const job = (await (await s.server.store()).getJob(done.json.id))!
    expect(JSON.stringify(job)).not.toMatch(/p%40ss|p@ss/)
  })

  it('without the credentials the origin answers 401: a per-item failure', async () => {
    const done = await optimizeAndWait(s, { type: 'url', url: `${origin.url}/private/horse.png` })
    expect(done.json.result[0]).toMatchObject({ success: 0, file_name: 'horse.png' })
    expect(done.json.result[0].error).toMatch(/HTTP 401/)
  })
})
