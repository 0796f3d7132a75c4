import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FormData, request } from 'undici'
import { call, files, fixture, optimizeAndWait, startServer, type Started } from './helpers.ts'

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

  it('form-urlencoded and multipart give the same validation', async () => {
    const a = await call(`${s.endpoint}/optimize`, { key: s.key, body: { type: 'files' } })
    const b = await call(`${s.endpoint}/optimize`, { key: s.key, body: files({}, { type: 'files' }) })
    expect(a.json).toEqual(b.json)
    expect(a.json.code).toBe(400)
  })
})
