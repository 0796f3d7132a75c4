/**
 * The fixed-quality recipe most image plugins recommend (mozjpeg, or a libimagequant palette, at one
 * quality), which the engine and large-app benchmarks compare the engine with.
 */
import sharp from 'sharp'
import type { ImageFormat } from '../src/engine/index.ts'

/** A plugin keeps the original when its output is not smaller: so does every peer here. */
export function keepSmaller(input: Buffer, out: Buffer): Uint8Array {
  return out.length < input.length ? out : input
}

export function recipe(input: Buffer, format: ImageFormat, q: number): Promise<Buffer> {
  const p = sharp(input, { animated: format === 'gif' || format === 'webp' })
  switch (format) {
    case 'jpeg':
      return p.jpeg({ quality: q, mozjpeg: true }).toBuffer()
    case 'png':
      return p.png({ palette: true, quality: q }).toBuffer()
    case 'webp':
      return p.webp({ quality: q }).toBuffer()
    case 'gif':
      return p.gif().toBuffer()
  }
}
