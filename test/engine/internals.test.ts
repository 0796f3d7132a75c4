import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { stripJpegMetadata } from '../../src/engine/jpeg-markers.ts'
import { encodeResidualPng, quantizeResiduals } from '../../src/engine/png-residual.ts'
import { fixture } from './_helpers.ts'

describe('png-residual', () => {
  it('writes a PNG that decodes to exactly its reconstruction, within step/2 of the input, alpha exact', async () => {
    const { data, info } = await sharp(fixture('horse.png')).raw().toBuffer({ resolveWithObject: true })
    expect(info.channels).toBe(4)
    const step = 8
    const r = quantizeResiduals(data, info.width, info.height, info.channels, true, step)
    const png = await encodeResidualPng(r)
    const decoded = await sharp(png).raw().toBuffer({ resolveWithObject: true })
    expect([decoded.info.width, decoded.info.height, decoded.info.channels]).toEqual([info.width, info.height, 4])
    expect(decoded.data.equals(Buffer.from(r.pixels))).toBe(true)
    for (let i = 0; i < data.length; i++) {
      if (i % 4 === 3) expect(r.pixels[i]).toBe(data[i])
      else expect(Math.abs(r.pixels[i]! - data[i]!)).toBeLessThanOrEqual(step / 2)
    }
  })

  it('handles grey images', async () => {
    const { data, info } = await sharp(fixture('page.png')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true })
    expect(info.channels).toBe(1)
    const r = quantizeResiduals(data, info.width, info.height, 1, false, 4)
    const png = await encodeResidualPng(r)
    expect((await sharp(png).toColourspace('b-w').raw().toBuffer()).equals(Buffer.from(r.pixels))).toBe(true)
    expect(png.length).toBeLessThan(fixture('page.png').length)
  })
})

describe('jpeg-markers', () => {
  it('refuses what it does not understand instead of guessing', () => {
    expect(stripJpegMetadata(Buffer.from('not a jpeg'), 1)).toBeNull()
    expect(stripJpegMetadata(fixture('truncated.jpg'), 1)).not.toBeUndefined()
    const jpeg = fixture('rocket.jpg')
    // Cut inside the first segment: the structure is incomplete.
    expect(stripJpegMetadata(jpeg.subarray(0, 10), 1)).toBeNull()
  })
})
