import type { Sharp as SharpInstance } from 'sharp'
import type { Sharp } from './load-sharp.ts'

/** Decoded 8-bit pixels, interleaved: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels. */
export interface Raster {
  data: Uint8Array
  width: number
  height: number
  channels: number
}

/**
 * Decode a prepared pipeline once, so that the search, the final encode and the reference all start from
 * the same pixels instead of decoding the input again for each (a 9 MP JPEG takes ~0.5 s to decode).
 * An alpha channel that is opaque everywhere is dropped: it cannot change what is seen, and the metric
 * would otherwise judge the image twice (over white and over black).
 */
export async function decodeRaster(p: SharpInstance): Promise<Raster> {
  const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })
  const raster: Raster = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels }
  return raster.channels === 2 || raster.channels === 4 ? dropOpaqueAlpha(raster) : raster
}

export function dropOpaqueAlpha(r: Raster): Raster {
  const c = r.channels
  if (!alphaIsOpaque(r.data, c)) return r
  const d = r.data
  const out = new Uint8Array(r.width * r.height * (c - 1))
  if (c === 4) {
    const n = r.width * r.height
    let i = 0
    if (LITTLE_ENDIAN && d.byteOffset % 4 === 0) {
      // Four RGBA words become three RGB words: a third of the stores of a byte loop.
      const from = new Uint32Array(d.buffer, d.byteOffset, n)
      const to = new Uint32Array(out.buffer, 0, Math.floor((n * 3) / 4))
      for (let j = 0; i + 4 <= n; i += 4, j += 3) {
        const p0 = from[i]!
        const p1 = from[i + 1]!
        const p2 = from[i + 2]!
        const p3 = from[i + 3]!
        to[j] = (p0 & 0xffffff) | (p1 << 24)
        to[j + 1] = ((p1 >>> 8) & 0xffff) | (p2 << 16)
        to[j + 2] = ((p2 >>> 16) & 0xff) | (p3 << 8)
      }
    }
    for (let j = i * 3; i < n; i++, j += 3) {
      out[j] = d[i * 4]!
      out[j + 1] = d[i * 4 + 1]!
      out[j + 2] = d[i * 4 + 2]!
    }
  } else {
    for (let i = 0, j = 0; i < d.length; i += c, j += c - 1) for (let k = 0; k < c - 1; k++) out[j + k] = d[i + k]!
  }
  return { data: out, width: r.width, height: r.height, channels: c - 1 }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Whether every `c`-th byte (the last channel) is 255: AND-ed a row's worth at a time, no branch per pixel. */
function alphaIsOpaque(d: Uint8Array, c: number): boolean {
  // RGBA read as little-endian words: the alpha byte is the top byte of each.
  if (c === 4 && LITTLE_ENDIAN && d.byteOffset % 4 === 0 && d.length % 4 === 0) {
    const words = new Uint32Array(d.buffer, d.byteOffset, d.length / 4)
    for (let start = 0; start < words.length; start += 4096) {
      let all = 0xff000000
      for (let i = start, end = Math.min(words.length, start + 4096); i < end; i++) all &= words[i]!
      if (all >>> 0 !== 0xff000000) return false
    }
    return true
  }
  for (let start = c - 1; start < d.length; start += 4096 * c) {
    let all = 255
    for (let i = start, end = Math.min(d.length, start + 4096 * c); i < end; i += c) all &= d[i]!
    if (all !== 255) return false
  }
  return true
}

/** A pipeline over raster pixels (grey for 1-2 channels, sRGB for 3-4). */
export function fromRaster(sharp: Sharp, r: Raster): SharpInstance {
  const p = sharp(r.data, { raw: { width: r.width, height: r.height, channels: r.channels as 1 | 2 | 3 | 4 }, limitInputPixels: false })
  return r.channels <= 2 ? p.toColourspace('b-w') : p
}

export function hasAlphaChannel(r: Raster): boolean {
  return r.channels === 2 || r.channels === 4
}
