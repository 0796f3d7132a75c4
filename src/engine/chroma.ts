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
  for (let by = 0; by < height; by += 2) {
    for (let bx = 0; bx < width; bx += 2) {
      let cb = 0
      let cr = 0
      let n = 0
      for (let y = by; y < Math.min(by + 2, height); y++) {
        for (let x = bx; x < Math.min(bx + 2, width); x++) {
          const i = (y * width + x) * c
          cb += -0.168736 * data[i]! - 0.331264 * data[i + 1]! + 0.5 * data[i + 2]!
          cr += 0.5 * data[i]! - 0.418688 * data[i + 1]! - 0.081312 * data[i + 2]!
          n++
        }
      }
      cb /= n
      cr /= n
      for (let y = by; y < Math.min(by + 2, height); y++) {
        for (let x = bx; x < Math.min(bx + 2, width); x++) {
          const i = (y * width + x) * c
          const Y = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!
          out[i] = clamp(Y + 1.402 * cr)
          out[i + 1] = clamp(Y - 0.344136 * cb - 0.714136 * cr)
          out[i + 2] = clamp(Y + 1.772 * cb)
          if (c === 4) out[i + 3] = data[i + 3]!
        }
      }
    }
  }
  return { ...r, data: out }
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v)
}
