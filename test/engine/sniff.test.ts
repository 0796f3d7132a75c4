import { describe, expect, it } from 'vitest'
import { sniffFormat } from '../../src/engine/index.ts'
import { fixture } from './_helpers.ts'

describe('sniffFormat', () => {
  it('recognises the corpus formats from their bytes', () => {
    expect(sniffFormat(fixture('rocket.jpg'))).toBe('jpeg')
    expect(sniffFormat(fixture('horse.png'))).toBe('png')
    expect(sniffFormat(fixture('no_time_for_that_tiny.gif'))).toBe('gif')
    // A truncated JPEG still starts like one: the decoder, not the sniffer, refuses it.
    expect(sniffFormat(fixture('truncated.jpg'))).toBe('jpeg')
  })

  it('recognises WebP by RIFF....WEBP', () => {
    const webp = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')])
    expect(sniffFormat(webp)).toBe('webp')
    const wav = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt ')])
    expect(sniffFormat(wav)).toBeNull()
  })

  it('ignores what the name says: a PNG renamed .jpg is a PNG, text renamed .png is nothing', () => {
    const lyingJpg = fixture('horse.png') // the bytes are what a server receives as "photo.jpg"
    expect(sniffFormat(lyingJpg)).toBe('png')
    expect(sniffFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull()
    expect(sniffFormat(Buffer.from('hello, this is not an image'))).toBeNull()
  })

  it('refuses empty and too-short inputs', () => {
    expect(sniffFormat(new Uint8Array())).toBeNull()
    expect(sniffFormat(Uint8Array.from([0xff, 0xd8]))).toBeNull()
    expect(sniffFormat(Uint8Array.from([0x89, 0x50, 0x4e, 0x47]))).toBeNull()
  })
})
