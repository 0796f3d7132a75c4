import sharp from 'sharp'

/**
 * A distinct PNG that always optimizes well: smooth gradients with a seed-dependent tint, stored with
 * no compression at all (so every encoder saves far more than the contract's 5%).
 */
export async function compressiblePng(seed: number, size = 64): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3
      raw[i] = (x * 4 + seed) & 255
      raw[i + 1] = (y * 4 + seed * 7) & 255
      raw[i + 2] = (seed * 13) & 255
    }
  }
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer()
}
