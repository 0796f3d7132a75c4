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
  const reconstruct = reconstructionTable(step)
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
      const exact = k === alphaChannel
      for (let x = k; x < stride; x += channels) {
        const b = up[upRow + x]!
        // Paeth in small integers (distances of a + b - c to a, b and c; ties go to a, then b).
        const pa = b > c ? b - c : c - b
        const pb = a > c ? a - c : c - a
        const pcSigned = a + b - c - c
        const pc = pcSigned < 0 ? -pcSigned : pcSigned
        const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
        const source = raw[row + x]!
        // Alpha is kept exact; colour takes the residual rounded to the step, clamped to a byte.
        const value = exact ? source : reconstruct[(pred << 8) | source]!
        filtered[out + x] = (value - pred) & 0xff
        pixels[row + x] = value
        a = value
        c = b
      }
    }
  }
  return { pixels, filtered, width, height, channels }
}

/** What a sample reconstructs to, at index (prediction << 8 | source): the rounded residual added back, clamped to a byte. */
function reconstructionTable(step: number): Uint8Array {
  const residual = residualTable(step)
  const table = new Uint8Array(256 * 256)
  for (let pred = 0; pred < 256; pred++) {
    for (let source = 0; source < 256; source++) table[(pred << 8) | source] = Math.min(255, Math.max(0, pred + residual[source - pred + 255]!))
  }
  return table
}

/** The residual `d` (−255…255, at index d + 255) rounded to the nearest multiple of `step`, halves away from 0. */
function residualTable(step: number): Int16Array {
  const half = step / 2
  const table = new Int16Array(511)
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
