import type { Sharp as SharpInstance } from 'sharp'

/** The most colours a PNG palette holds. */
export const PALETTE_COLOURS = 256

/** One point in an encoder's settings space; the search walks over `quality`. */
export type EncoderSettings =
  | { kind: 'jpeg'; quality: number; chroma: '4:2:0' | '4:4:4'; probe?: boolean }
  | { kind: 'png-palette'; quality: number; colours: number; dither: number; effort: number; compressionLevel?: number }
  | { kind: 'png-lossless'; palette: boolean }
  | { kind: 'webp'; quality: number; effort: number }
  | { kind: 'webp-lossless' }
  | { kind: 'gif'; interFrameMaxError: number; reuse: boolean; dither: number }

export function applyEncoder(p: SharpInstance, s: EncoderSettings): SharpInstance {
  switch (s.kind) {
    case 'jpeg':
      // mozjpeg: trellis quantisation, optimised progressive scans, its own quant tables. A search probe
      // skips the scan optimisation: it rearranges the same coefficients (same pixels, ~3% fewer bytes)
      // and costs a third of the encode.
      return p.jpeg({ quality: s.quality, mozjpeg: true, chromaSubsampling: s.chroma, ...(s.probe ? { optimiseScans: false } : {}) })
    case 'png-palette':
      return p.png({
        palette: true,
        quality: s.quality,
        colours: s.colours,
        dither: s.dither,
        effort: s.effort,
        compressionLevel: s.compressionLevel ?? 9,
      })
    case 'png-lossless':
      // palette: true with quality 100 and no dither is exact only for <= 256 colours: the caller checks.
      return s.palette
        ? p.png({ palette: true, quality: 100, colours: PALETTE_COLOURS, dither: 0, effort: 10, compressionLevel: 9 })
        : p.png({ compressionLevel: 9, adaptiveFiltering: true, effort: 10, palette: false })
    case 'webp':
      return p.webp({ quality: s.quality, effort: s.effort, smartSubsample: true })
    case 'webp-lossless':
      return p.webp({ lossless: true, effort: 6 })
    case 'gif':
      return p.gif({
        effort: 10,
        reuse: s.reuse,
        dither: s.dither,
        interFrameMaxError: s.interFrameMaxError,
        interPaletteMaxError: s.reuse ? 0 : 3,
      })
  }
}

export function describe(s: EncoderSettings): string {
  switch (s.kind) {
    case 'jpeg':
      return `jpeg q${s.quality} ${s.chroma}`
    case 'png-palette':
      return `png palette q${s.quality}`
    case 'png-lossless':
      return s.palette ? 'png lossless palette' : 'png lossless'
    case 'webp':
      return `webp q${s.quality}`
    case 'webp-lossless':
      return 'webp lossless'
    case 'gif':
      return `gif e${s.interFrameMaxError}`
  }
}

/**
 * Whether a palette encode used every colour it was allowed. libimagequant then did not reach the quality
 * asked for, and asking for more changes nothing: on 67 PNGs (large app, wide corpus, corpus) at qualities
 * 50…100, each of the 124 encodes with a full palette was byte for byte the encode at every higher quality.
 * Read from the PLTE chunk (its length is 3 bytes per colour); false when there is none.
 */
export function paletteIsFull(png: Uint8Array, colours: number): boolean {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength)
  // After the 8-byte signature, chunks: length (4), type (4), data, CRC (4). PLTE comes before IDAT.
  for (let at = 8; at + 8 <= png.length; ) {
    const length = view.getUint32(at)
    const type = String.fromCharCode(png[at + 4]!, png[at + 5]!, png[at + 6]!, png[at + 7]!)
    if (type === 'PLTE') return length / 3 >= colours
    if (type === 'IDAT') return false
    at += 12 + length
  }
  return false
}
