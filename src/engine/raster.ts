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
  for (let i = c - 1; i < r.data.length; i += c) if (r.data[i] !== 255) return r
  const colour = c - 1
  const out = new Uint8Array(r.width * r.height * colour)
  for (let i = 0, j = 0; i < r.data.length; i += c, j += colour) {
    for (let k = 0; k < colour; k++) out[j + k] = r.data[i + k]!
  }
  return { data: out, width: r.width, height: r.height, channels: colour }
}

/** A pipeline over raster pixels (grey for 1-2 channels, sRGB for 3-4). */
export function fromRaster(sharp: Sharp, r: Raster): SharpInstance {
  const p = sharp(r.data, { raw: { width: r.width, height: r.height, channels: r.channels as 1 | 2 | 3 | 4 }, limitInputPixels: false })
  return r.channels <= 2 ? p.toColourspace('b-w') : p
}

export function hasAlphaChannel(r: Raster): boolean {
  return r.channels === 2 || r.channels === 4
}
