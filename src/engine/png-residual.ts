import { promisify } from 'node:util'
import zlib from 'node:zlib'

const deflate = promisify(zlib.deflate)

/**
 * Lossy truecolour PNG by quantizing the Paeth prediction residuals (the "lossy PNG" technique): each
 * sample is predicted from its already *reconstructed* neighbours, the residual is rounded to a multiple
 * of `step`, and the reconstruction is what gets stored. The error per sample stays within step/2 and
 * never accumulates, and the stored Paeth residuals take few distinct values, so deflate packs them far
 * tighter than a lossless PNG, without a palette's banding. Alpha is kept exact.
 *
 * sharp cannot choose PNG filters, so this writes the PNG itself (IHDR, one IDAT, IEND) with Node's zlib.
 */
export interface ResidualImage {
  /** The reconstructed pixels: what the PNG decodes to. */
  pixels: Uint8Array
  /** The filtered scanlines (filter byte + residuals), ready to deflate. */
  filtered: Uint8Array
  width: number
  height: number
  channels: number
}

export function quantizeResiduals(
  raw: Uint8Array,
  width: number,
  height: number,
  channels: number,
  hasAlpha: boolean,
  step: number,
): ResidualImage {
  const stride = width * channels
  const pixels = new Uint8Array(raw.length)
  const filtered = new Uint8Array((stride + 1) * height)
  const alphaChannel = hasAlpha ? channels - 1 : -1
  const quantized = residualTable(step)
  const none = new Uint8Array(stride)
  for (let y = 0; y < height; y++) {
    const row = y * stride
    const out = y * (stride + 1) + 1
    filtered[out - 1] = 4 // Paeth
    // The row above; zeros above the first row, as Paeth defines it.
    const up = y > 0 ? pixels : none
    const upRow = y > 0 ? row - stride : 0
    // Each channel is predicted from its own samples only, so the channels can run one after the other.
    for (let k = 0; k < channels; k++) {
      let a = 0 // left, reconstructed
      let c = 0 // up-left
      if (k === alphaChannel) {
        for (let x = k; x < stride; x += channels) {
          const b = up[upRow + x]!
          const value = raw[row + x]!
          filtered[out + x] = (value - paeth(a, b, c)) & 0xff
          pixels[row + x] = value
          a = value
          c = b
        }
        continue
      }
      for (let x = k; x < stride; x += channels) {
        const b = up[upRow + x]!
        const pred = paeth(a, b, c)
        let value = pred + quantized[raw[row + x]! - pred + 255]!
        if (value < 0) value = 0
        else if (value > 255) value = 255
        filtered[out + x] = (value - pred) & 0xff
        pixels[row + x] = value
        a = value
        c = b
      }
    }
  }
  return { pixels, filtered, width, height, channels }
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c
  const pa = Math.abs(p - a)
  const pb = Math.abs(p - b)
  const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** The residual `d` (−255…255, at index d + 255) rounded to the nearest multiple of `step`, halves away from 0. */
function residualTable(step: number): Float64Array {
  const half = step / 2
  const table = new Float64Array(511)
  for (let d = -255; d <= 255; d++) {
    table[d + 255] = d >= 0 ? Math.floor((d + half) / step) * step : -Math.floor((-d + half) / step) * step
  }
  return table
}

export async function encodeResidualPng(img: ResidualImage): Promise<Uint8Array> {
  const colourType = img.channels === 1 ? 0 : img.channels === 2 ? 4 : img.channels === 3 ? 2 : 6
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(img.width, 0)
  ihdr.writeUInt32BE(img.height, 4)
  ihdr[8] = 8
  ihdr[9] = colourType
  // Level 6 with the filtered strategy: within ~1% of level 9, four times faster on photos.
  const idat = await deflate(img.filtered, { level: 6, memLevel: 9, strategy: zlib.constants.Z_FILTERED })
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0)
  return Buffer.concat([head, data, crc])
}
