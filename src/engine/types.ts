/**
 * The engine's contract: `(bytes, params) → optimized bytes (+ WebP)`.
 * The server is its only caller; it decides `success` (savings > 5%) and charges tokens.
 */
export type Compression = 'intelligent' | 'ultra' | 'lossless'

/** The formats the engine takes in; the output keeps the input's format. */
export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp'

export interface EngineParams {
  compression: Compression
  /** Also produce a WebP version (kept only when smaller than the original). */
  webp: boolean
  /** Convert CMYK to sRGB through its ICC profile. */
  cmykToRgb: boolean
  /** Keep EXIF/IPTC; when false they are stripped (after auto-orienting). */
  keepExif: boolean
  /** 0 = off; otherwise fit inside the box, keep aspect ratio, never enlarge. */
  maxWidth: number
  maxHeight: number
}

export interface EngineResult {
  /** The format sniffed from the input bytes (and so of `data`). */
  format: ImageFormat
  originalSize: number
  /** The optimized bytes; the input itself when nothing could be gained. */
  data: Uint8Array
  width: number
  height: number
  /** The WebP version, or null when not asked for or not smaller than the original. */
  webp: Uint8Array | null
}

export interface EngineOptions {
  signal?: AbortSignal
  /** Refuse inputs with more pixels than this (decompression bombs). */
  limitInputPixels?: number
}
