import { existsSync, readdirSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FormData, request } from 'undici'
import { call, files, fixture, optimizeAndWait, startServer, tempDir, type Started } from './helpers.ts'

describe('uploads: oversized, corrupt, empty, non-image, lying names', () => {
  let s: Started
  beforeAll(async () => {
    s = await startServer({ maxFileSize: 64 * 1024 }, 100)
  })
  afterAll(() => s.close())

  it('an upload over the size limit is 400 and nothing is queued or charged', async () => {
    const big = Buffer.concat([fixture('horse.png'), Buffer.alloc(64 * 1024)])
    const answer = await call(`${s.endpoint}/optimize`, { key: s.key, body: files({ file: ['big.png', big] }, { type: 'file' }) })
    expect(answer.status).toBe(200)
    expect(answer.json).toEqual({ status: 'error', code: 400, errors: ['A file is larger than the 65536-byte limit.'] })
    expect((await call(`${s.endpoint}/users/info`, { key: s.key })).json.result.tokens).toBe(100)
  })

  it('corrupt, empty and non-image uploads are per-item failures with a reason; the good one still succeeds', async () => {
    const done = await optimizeAndWait(
      s,
      files(
        {
          file1: ['truncated.jpg', fixture('truncated.jpg')],
          file2: ['empty.jpg', Buffer.alloc(0)],
          file3: ['page.svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')],
          file4: ['horse.png', fixture('horse.png')],
        },
        { type: 'files' },
      ),
    )
    const [corrupt, empty, svg, good] = done.json.result
    expect(corrupt).toMatchObject({ success: 0, file_name: 'truncated.jpg', original_size: 400, saved_bytes: 0, url: null, webp: null })
    expect(corrupt.error).toMatch(/truncated or corrupt/i)
    expect(empty).toMatchObject({ success: 0, file_name: 'empty.jpg', original_size: 0, url: null })
    expect(empty.error).toMatch(/empty \(0 bytes\)/)
    expect(svg).toMatchObject({ success: 0, file_name: 'page.svg', url: null })
    expect(svg.error).toMatch(/not a JPEG, PNG, GIF or WebP image/)
    expect(good).toMatchObject({ success: 1, file_name: 'horse.png' })
    expect(done.json.user.tokens).toBe(99)
  })

  it('the format is sniffed from the bytes: a PNG sent as photo.jpg with image/jpeg comes back as PNG', async () => {
    const form = new FormData()
    form.set('type', 'file')
    form.set('file', new Blob([fixture('horse.png')], { type: 'image/jpeg' }), 'photo.jpg')
    const done = await optimizeAndWait(s, form)
    const [item] = done.json.result
    expect(item).toMatchObject({ success: 1, file_name: 'photo.jpg' })
    const dl = await request(item.url as string)
    expect(dl.headers['content-type']).toBe('image/png')
    const bytes = Buffer.from(await dl.body.arrayBuffer())
    expect(bytes.subarray(1, 4).toString()).toBe('PNG')
  })

  it('a file name with spaces and non-ASCII characters is kept in file_name and gives a working URL', async () => {
    const done = await optimizeAndWait(s, files({ file: ['mon café (1).png', fixture('horse.png')] }, { type: 'file' }))
    const [item] = done.json.result
    expect(item.file_name).toBe('mon café (1).png')
    const dl = await request(item.url as string)
    expect(dl.statusCode).toBe(200)
    expect(Buffer.from(await dl.body.arrayBuffer()).length).toBe(item.optimized_size)
  })

  it('an image over the pixel limit (a decompression bomb) is a per-item failure', async () => {
    const strict = await startServer({ limitInputPixels: 10_000 }, 10)
    try {
      const done = await optimizeAndWait(strict, files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }))
      expect(done.json.result[0]).toMatchObject({ success: 0, file_name: 'horse.png', url: null })
      expect(done.json.result[0].error).toMatch(/decompression bomb/)
      expect(done.json.user.tokens).toBe(10)
    } finally {
      await strict.close()
    }
  })

  it('WebP input is accepted (the contract\'s decision) and comes back as WebP', async () => {
    const webp = await sharp(fixture('horse.png')).webp({ quality: 100, effort: 0 }).toBuffer()
    const done = await optimizeAndWait(s, files({ file: ['horse.webp', webp] }, { type: 'file' }))
    const [item] = done.json.result
    expect(item.error ?? '').not.toMatch(/not a JPEG, PNG, GIF or WebP/)
    expect(item.success).toBe(1)
    const dl = await request(item.url as string)
    expect(dl.headers['content-type']).toBe('image/webp')
    expect(Buffer.from(await dl.body.arrayBuffer()).subarray(8, 12).toString()).toBe('WEBP')
  })

  it('a file name with a path never reaches the filesystem or the link as a path', async () => {
    const done = await optimizeAndWait(s, files({ file: ['../../etc/evil.png', fixture('horse.png')] }, { type: 'file' }))
    const [item] = done.json.result
    // The multipart parser keeps the base name only, as browsers send it.
    expect(item.file_name).toBe('evil.png')
    expect(new URL(item.url as string).pathname).toMatch(/^\/image\/[0-9a-f]{32}\/evil\.png$/)
  })

  it('form-urlencoded and multipart give the same validation', async () => {
    const a = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'files' } })
    const b = await call(`${s.endpoint}/optimize`, { key: s.key, body: files({}, { type: 'files' }) })
    expect(a.json).toEqual(b.json)
    expect(a.json.code).toBe(400)
  })
})

describe('uploads on disk (SQLite store)', () => {
  let s: Started
  let tmp: Awaited<ReturnType<typeof tempDir>>
  const uploadsDir = (): string => path.join(tmp.dir, 'blobs', 'uploads')
  const leftovers = (): string[] => (existsSync(uploadsDir()) ? readdirSync(uploadsDir()) : [])
  beforeAll(async () => {
    tmp = await tempDir()
    s = await startServer({ dataDir: tmp.dir, maxFileSize: 64 * 1024 }, 100)
  })
  afterAll(async () => {
    await s.close()
    await tmp.remove()
  })

  it('a refused request (oversized, invalid, 455) leaves no upload behind', async () => {
    const big = Buffer.concat([fixture('horse.png'), Buffer.alloc(64 * 1024)])
    expect((await call(`${s.endpoint}/optimize`, { key: s.key, body: files({ file: ['big.png', big] }, { type: 'file' }) })).json.code).toBe(400)
    const invalid = files({ file1: ['a.png', fixture('horse.png')] }, { type: 'file' })
    expect((await call(`${s.endpoint}/optimize`, { key: s.key, body: invalid })).json.code).toBe(400)
    const poor = await s.server.createAccount({ name: 'Poor', email: 'poor@example.com', tokens: 0 })
    const refused = await call(`${s.endpoint}/optimize`, { key: poor.apiKey, body: files({ file: ['a.png', fixture('horse.png')] }, { type: 'file' }) })
    expect(refused.json.code).toBe(455)
    expect(leftovers()).toEqual([])
  })

  it('a client that disconnects mid-upload leaves nothing behind and the server keeps working', async () => {
    const { port } = new URL(s.base)
    const socket = net.connect(Number(port), '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    const head = [
      'POST /v1/optimize HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      `X-API-KEY: ${s.key}`,
      'Content-Type: multipart/form-data; boundary=XYZ',
      'Content-Length: 100000',
      '',
      '',
    ].join('\r\n')
    socket.write(head)
    socket.write('--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n')
    socket.write(fixture('horse.png').subarray(0, 8000))
    // Wait until the server has started writing the upload, then hang up.
    for (let i = 0; i < 200 && leftovers().length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(leftovers()).toHaveLength(1)
    socket.destroy()
    for (let i = 0; i < 200 && leftovers().length > 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(leftovers()).toEqual([])
    const ok = await optimizeAndWait(s, files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }))
    expect(ok.json.result[0].success).toBe(1)
  })
})
