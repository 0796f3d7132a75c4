import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import sharp from 'sharp'
import { request } from 'undici'
import { ENGINE_VERSION } from '../../src/engine/index.ts'
import { call, files, fixture, optimizeAndWait, startServer, type Started } from './helpers.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe('the compatible server, endpoint by endpoint', () => {
  let s: Started
  beforeAll(async () => {
    s = await startServer({}, 100)
  })
  afterAll(() => s.close())

  it('answers the health endpoints without a key', async () => {
    expect((await call(`${s.base}/`)).json).toEqual({ status: 1 })
    expect((await call(`${s.base}/ping`)).json).toEqual({ status: 'ok', code: 200 })
    const status = await call(`${s.base}/status`)
    expect(status.json).toMatchObject({
      status: 'ok',
      code: 200,
      software: { name: 'unplugin-megaoptim', version: expect.stringMatching(/^\d+\.\d+\.\d+/), store: 'memory', engine: ENGINE_VERSION },
    })
  })

  it('GET and POST /v1/users/info give the account; a bad or missing key is 401', async () => {
    for (const method of ['GET', 'POST'] as const) {
      const ok = await call(`${s.endpoint}/users/info`, { method, key: s.key })
      expect(ok.status).toBe(200)
      expect(ok.json).toEqual({ status: 'ok', code: 200, result: { name: 'Test', email: expect.any(String), tokens: 100 } })
    }
    const bad = await call(`${s.endpoint}/users/info`, { key: 'x'.repeat(32) })
    expect(bad.status).toBe(200)
    expect(bad.json).toEqual({ status: 'error', code: 401, errors: [expect.stringContaining('Invalid API key')] })
    expect(bad.text).not.toContain('x'.repeat(32))
    expect((await call(`${s.endpoint}/users/info`)).json.code).toBe(401)
  })

  it('POST /v1/register creates a usable account, 400 in Laravel form, 409 on a duplicate', async () => {
    const fields = {
      first_name: 'Ada',
      last_name: 'Lovelace',
      email: 'ada@example.com',
      password: 'correct horse',
      password_confirmation: 'correct horse',
      terms_and_conditions: 'yes',
    }
    const ok = await call(`${s.endpoint}/register`, { body: fields })
    // Open registration hands out no free tokens unless the operator says so (signupTokens).
    expect(ok.json).toMatchObject({ status: 'ok', code: 200, result: { name: 'Ada Lovelace', email: 'ada@example.com', tokens: 0 } })
    expect(ok.json.result.api_key).toMatch(/^[A-Za-z0-9]{32}$/)
    const info = await call(`${s.endpoint}/users/info`, { key: ok.json.result.api_key })
    expect(info.json.result).toEqual({ name: 'Ada Lovelace', email: 'ada@example.com', tokens: 0 })

    const dup = await call(`${s.endpoint}/register`, { body: { ...fields, email: 'ADA@example.com' } })
    expect(dup.json).toEqual({ status: 'error', code: 409, errors: [expect.any(String)] })

    const bad = await call(`${s.endpoint}/register`, {
      body: { first_name: 'x', email: 'not-an-email', password: 'short', password_confirmation: 'other' },
    })
    expect(bad.status).toBe(200)
    expect(bad.json).toEqual({
      status: 'error',
      code: 400,
      errors: {
        last_name: ['The last name field is required.'],
        email: ['The email must be a valid email address.'],
        password: ['The password must be at least 8 characters.', 'The password confirmation does not match.'],
        terms_and_conditions: ['The terms and conditions must be accepted.'],
      },
    })
  })

  it('POST /v1/optimize queues a job (202) and /result gives the items in input order with the user', async () => {
    const submitted = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files(
        { file2: ['palette_color.png', fixture('palette_color.png')], file1: ['horse.png', fixture('horse.png')] },
        { type: 'files', wait: '1' },
      ),
    })
    expect(submitted.status).toBe(200)
    expect(submitted.json).toEqual({ status: 'processing', code: 202, process_id: expect.stringMatching(UUID) })
    const id = submitted.json.process_id as string
    let done
    do done = await call(`${s.endpoint}/optimize/${id}/result?timeout=30`, { key: s.key, method: 'POST' })
    while (done.json.code === 202)
    expect(done.json).toMatchObject({ status: 'ok', code: 200, id, user: { name: 'Test', tokens: expect.any(Number) } })
    const names = done.json.result.map((i: { file_name: string }) => i.file_name)
    expect(names).toEqual(['horse.png', 'palette_color.png'])
    for (const item of done.json.result) {
      expect(item).toMatchObject({ success: 1, webp: null })
      expect(item.saved_bytes).toBe(item.original_size - item.optimized_size)
      expect(item.saved_percent).toBeGreaterThan(5)
      // Downloads need no key and are exactly the size announced.
      const dl = await request(item.url as string)
      const bytes = Buffer.from(await dl.body.arrayBuffer())
      expect(dl.statusCode).toBe(200)
      expect(dl.headers['content-type']).toBe('image/png')
      expect(bytes.length).toBe(item.optimized_size)
      expect(bytes.subarray(1, 4).toString()).toBe('PNG')
    }
    expect(done.json.result[0].original_size).toBe(fixture('horse.png').length)
    // GET works as well, and the finished job stays available.
    const again = await call(`${s.endpoint}/optimize/${id}/result`, { key: s.key })
    expect(again.json.result).toEqual(done.json.result)
  })

  it('type=file with webp=1 gives a WebP version at the optimized URL plus .webp', async () => {
    const done = await optimizeAndWait(s, files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', webp: '1' }))
    const [item] = done.json.result
    expect(item.success).toBe(1)
    expect(item.webp).toEqual({
      url: `${item.url}.webp`,
      optimized_size: expect.any(Number),
      saved_bytes: fixture('horse.png').length - item.webp.optimized_size,
      saved_percent: expect.any(Number),
    })
    const dl = await request(item.webp.url as string)
    const bytes = Buffer.from(await dl.body.arrayBuffer())
    expect(dl.headers['content-type']).toBe('image/webp')
    expect(bytes.length).toBe(item.webp.optimized_size)
    expect(bytes.subarray(8, 12).toString()).toBe('WEBP')
  })

  it('passes the parameters to the engine: max_width/max_height fit the box; legacy "lossy" means intelligent', async () => {
    const done = await optimizeAndWait(
      s,
      files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', compression: 'lossy', max_width: '40', max_height: '1000' }),
    )
    const [item] = done.json.result
    expect(item.success).toBe(1)
    const dl = await request(item.url as string)
    const meta = await sharp(Buffer.from(await dl.body.arrayBuffer())).metadata()
    const original = await sharp(fixture('horse.png')).metadata()
    expect(meta.width).toBe(40)
    expect(meta.height).toBe(Math.round((original.height! * 40) / original.width!))
  })

  it('validation problems are 400 in the envelope', async () => {
    const cases: [string, ReturnType<typeof files> | Record<string, string>, RegExp][] = [
      ['no type', files({ file: ['a.png', fixture('horse.png')] }), /"type" field is required/],
      ['unknown type', { type: 'folder' }, /type must be one of url, urls, file, files/],
      ['type=file without file', files({ file1: ['a.png', fixture('horse.png')] }, { type: 'file' }), /Missing file/],
      ['type=files without files', { type: 'files' }, /Missing files/],
      ['type=url without url', { type: 'url' }, /"url" field is required/],
      ['bad url', { type: 'url', url: 'not a url' }, /url is not a valid URL/],
      ['ftp url', { type: 'url', url: 'ftp://example.com/a.png' }, /must be an http or https URL/],
      ['url6', { type: 'urls', url1: 'http://example.com/a.png', url6: 'http://example.com/b.png' }, /At most 5 images/],
      ['bad flag', files({ file: ['a.png', fixture('horse.png')] }, { type: 'file', webp: 'maybe' }), /webp must be 1 or 0/],
      ['bad max_width', files({ file: ['a.png', fixture('horse.png')] }, { type: 'file', max_width: '-3' }), /max_width must be 0/],
    ]
    for (const [label, body, message] of cases) {
      const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body })
      expect(answer.status, label).toBe(200)
      expect(answer.json, label).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(message)] })
    }
  })

  it('more than 5 files is 400', async () => {
    const six = Object.fromEntries([1, 2, 3, 4, 5, 6].map((n) => [`file${n}`, [`${n}.png`, fixture('palette_color.png')]])) as Record<
      string,
      [string, Buffer]
    >
    const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body: files(six, { type: 'files' }) })
    expect(answer.json).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(/At most 5 images/)] })
  })

  it('zero-padded numbers cannot alias an image number to pass the 5-image cap', async () => {
    const padded = Object.fromEntries(
      ['url1', 'url01', 'url001', 'url0001', 'url2', 'url02', 'url002', 'url3', 'url03', 'url4', 'url04', 'url5'].map((k) => [
        k,
        'http://example.com/a.png',
      ]),
    )
    const urls = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'urls', ...padded } })
    expect(urls.json).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(/At most 5 images/)] })
    const alone = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'urls', url01: 'http://example.com/a.png' } })
    expect(alone.json).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(/got "url01"/)] })
    const twoFiles = files(
      { file1: ['1.png', fixture('palette_color.png')], file01: ['01.png', fixture('palette_color.png')] },
      { type: 'files' },
    )
    const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body: twoFiles })
    expect(answer.json).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(/got "file01"/)] })
  })

  it('JSON bodies, other content types and broken multipart are 400, never a crash or a hang', async () => {
    const json = await call(`${s.endpoint}/optimize`, { key: s.key, body: '{"type":"url"}', contentType: 'application/json' })
    expect(json.json).toEqual({ status: 'error', code: 400, errors: [expect.stringMatching(/JSON bodies are not accepted/)] })
    const text = await call(`${s.endpoint}/optimize`, { key: s.key, body: 'type=url', contentType: 'text/plain' })
    expect(text.json.code).toBe(400)
    const broken = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: '--xyz\r\nContent-Disposition: form-data; name="type"\r\n\r\nfile\r\n--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
      contentType: 'multipart/form-data; boundary=xyz',
    })
    expect(broken.status).toBe(200)
    expect(broken.json).toEqual({ status: 'error', code: 400, errors: [expect.any(String)] })
    const noBoundary = await call(`${s.endpoint}/optimize`, { key: s.key, body: 'abc', contentType: 'multipart/form-data' })
    expect(noBoundary.json.code).toBe(400)
    // The server still works afterwards.
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.code).toBe(200)
  })

  it('an unknown key is 404 at the auth guard, and the key is never echoed', async () => {
    const key = 'Z'.repeat(32)
    const answer = await call(`${s.endpoint}/optimize`, { key, body: { type: 'url', url: 'http://example.com/a.png' } })
    expect(answer.json).toEqual({ status: 'error', code: 404, errors: [expect.stringContaining('Invalid API key')] })
    expect(answer.text).not.toContain(key)
    expect((await call(`${s.endpoint}/optimize`, { body: { type: 'url' } })).json.code).toBe(404)
  })

  it('/result: bad id 400, unknown id 404, another key\'s job 401', async () => {
    expect((await call(`${s.endpoint}/optimize/not-a-uuid/result`, { key: s.key })).json).toEqual({
      status: 'error',
      code: 400,
      errors: [expect.stringContaining('Bad process id')],
    })
    const unknown = await call(`${s.endpoint}/optimize/00000000-0000-4000-8000-000000000000/result`, { key: s.key })
    expect(unknown.json).toEqual({ status: 'error', code: 404, errors: [expect.stringContaining('Unknown process id')] })

    const other = await s.server.createAccount({ name: 'Other', email: 'other@example.com', tokens: 10 })
    const submitted = await call(`${s.endpoint}/optimize`, {
      key: s.key,
      body: files({ file: ['a.png', fixture('palette_color.png')] }, { type: 'file' }),
    })
    const theirs = await call(`${s.endpoint}/optimize/${submitted.json.process_id}/result?timeout=1`, { key: other.apiKey })
    expect(theirs.json).toEqual({ status: 'error', code: 401, errors: [expect.stringContaining('does not belong')] })
  })

  it('unknown routes and malformed URLs keep the envelope', async () => {
    const answer = await call(`${s.base}/v1/nothing-here`, { key: s.key })
    expect(answer.status).toBe(200)
    expect(answer.json).toEqual({ status: 'error', code: 404, errors: ['Unknown endpoint: GET /v1/nothing-here.'] })
    const bad = await call(`${s.base}/v1/optimize/%zz/result`, { key: s.key })
    expect(bad.status).toBe(200)
    expect(bad.json).toEqual({ status: 'error', code: 400, errors: [expect.stringContaining('not a valid url component')] })
  })

  it('counts every request by route', () => {
    expect(s.server.stats.requests['POST /v1/optimize']).toBeGreaterThan(5)
    expect(s.server.stats.requests['GET /v1/users/info']).toBeGreaterThan(0)
    expect(s.server.stats.totalRequests).toBe(Object.values(s.server.stats.requests).reduce((a, b) => a + b, 0))
  })
})
