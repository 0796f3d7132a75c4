import type { Raster } from './raster.ts'

/**
 * What 4:2:0 chroma subsampling alone does to an image, with no quantization: the JFIF YCbCr transform,
 * Cb/Cr averaged over each 2x2 block and spread back. No JPEG quality repairs this loss, so when the metric
 * finds it too large the encoder must keep full-resolution chroma (4:4:4). It is large on saturated colour
 * edges: coloured text, thin red lines on blue, sources that were saved at 4:4:4 on purpose.
 */
export function simulate420(r: Raster): Raster {
  if (r.channels < 3) return r
  const { width, height, channels: c, data } = r
  const out = new Uint8Array(data.length)
  const down = width * c
  for (let by = 0; by < height; by += 2) {
    const hasDown = by + 1 < height
    for (let bx = 0, i = by * down; bx < width; bx += 2, i += 2 * c) {
      const hasRight = bx + 1 < width
      // Summed in the block's reading order, then averaged, as a 2x2 box filter over the samples present.
      let cb = cbAt(data, i)
      let cr = crAt(data, i)
      let n = 1
      if (hasRight) {
        cb += cbAt(data, i + c)
        cr += crAt(data, i + c)
        n++
      }
      if (hasDown) {
        cb += cbAt(data, i + down)
        cr += crAt(data, i + down)
        n++
        if (hasRight) {
          cb += cbAt(data, i + down + c)
          cr += crAt(data, i + down + c)
          n++
        }
      }
      cb /= n
      cr /= n
      rebuild(data, out, i, c, cb, cr)
      if (hasRight) rebuild(data, out, i + c, c, cb, cr)
      if (hasDown) {
        rebuild(data, out, i + down, c, cb, cr)
        if (hasRight) rebuild(data, out, i + down + c, c, cb, cr)
      }
    }
  }
  return { ...r, data: out }
}

function cbAt(d: Uint8Array, i: number): number {
  return -0.168736 * d[i]! - 0.331264 * d[i + 1]! + 0.5 * d[i + 2]!
}

function crAt(d: Uint8Array, i: number): number {
  return 0.5 * d[i]! - 0.418688 * d[i + 1]! - 0.081312 * d[i + 2]!
}

/** The pixel's own luma with the block's chroma, back to RGB (alpha copied). */
function rebuild(data: Uint8Array, out: Uint8Array, i: number, c: number, cb: number, cr: number): void {
  const Y = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!
  out[i] = clamp(Y + 1.402 * cr)
  out[i + 1] = clamp(Y - 0.344136 * cb - 0.714136 * cr)
  out[i + 2] = clamp(Y + 1.772 * cb)
  if (c === 4) out[i + 3] = data[i + 3]!
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v)
}
