import zlib from 'node:zlib'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { optimizeImage } from '../../src/engine/index.ts'
import { failure, fixture, params } from './_helpers.ts'

/** A valid 1x1 PNG whose header then claims `width` x `height`: the classic decompression bomb. */
async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).png().toBuffer()
  // IHDR data starts at byte 16 (8 signature + 4 length + 4 type); its CRC covers type + data.
  png.writeUInt32BE(width, 16)
  png.writeUInt32BE(height, 20)
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29)
  return png
}

describe('optimizeImage on bad input', () => {
  it('fails cleanly on the truncated JPEG of the corpus, for every level', async () => {
    for (const compression of ['intelligent', 'ultra', 'lossless'] as const) {
      const err = await failure(optimizeImage(fixture('truncated.jpg'), params({ compression, webp: true })))
      expect(err.code).toBe('ENGINE_CORRUPT_INPUT')
      expect(err.message).toMatch(/truncated or corrupt.*original is kept/)
    }
  })

  it('fails cleanly on a PNG cut in the middle of its pixel data', async () => {
    const png = fixture('page.png')
    const err = await failure(optimizeImage(png.subarray(0, png.length >> 1), params()))
    expect(err.code).toBe('ENGINE_CORRUPT_INPUT')
  })

  it('refuses empty input', async () => {
    const err = await failure(optimizeImage(new Uint8Array(), params()))
    expect(err.code).toBe('ENGINE_EMPTY_INPUT')
  })

  it('refuses what is not a JPEG, PNG, GIF or WebP, whatever its name', async () => {
    for (const bytes of [Buffer.from('just some text'), Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')]) {
      const err = await failure(optimizeImage(bytes, params()))
      expect(err.code).toBe('ENGINE_UNSUPPORTED_FORMAT')
      expect(err.message).toMatch(/not a JPEG, PNG, GIF or WebP/)
    }
  })

  it('refuses a tiny PNG that declares 60000 x 60000 pixels before decoding it', async () => {
    const bomb = await pngDeclaring(60_000, 60_000)
    expect(bomb.length).toBeLessThan(100)
    const err = await failure(optimizeImage(bomb, params()))
    expect(err.code).toBe('ENGINE_TOO_LARGE')
    expect(err.message).toMatch(/60000x60000.*limit/)
  })

  it('honours a caller-supplied limitInputPixels', async () => {
    const err = await failure(optimizeImage(fixture('rocket.jpg'), params(), { limitInputPixels: 640 * 426 }))
    expect(err.code).toBe('ENGINE_TOO_LARGE')
    const ok = await optimizeImage(fixture('rocket.jpg'), params({ compression: 'lossless' }), { limitInputPixels: 640 * 427 })
    expect(ok.width).toBe(640)
  })

  it('counts every frame of an animation against the limit', async () => {
    // 14 x 25 pixels x 24 frames = 8400
    const err = await failure(optimizeImage(fixture('no_time_for_that_tiny.gif'), params(), { limitInputPixels: 8399 }))
    expect(err.code).toBe('ENGINE_TOO_LARGE')
  })

  it('stops when its signal is aborted', async () => {
    const controller = new AbortController()
    controller.abort()
    const err = await failure(optimizeImage(fixture('rocket.jpg'), params(), { signal: controller.signal }))
    expect(err.code).toBe('ENGINE_ABORTED')
  })
})
