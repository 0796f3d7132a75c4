/**
 * The engine's contract: `(bytes, params) → optimized bytes (+ WebP)`.
 * The server is its only caller; it decides `success` (savings > 5%) and charges tokens.
 */
import type { ImageFormat } from '../contract/formats.ts'
import type { ImageParams } from '../contract/params.ts'

export type { ImageFormat } from '../contract/formats.ts'
export type { Compression } from '../contract/params.ts'

/** The contract's image settings, as the engine takes them. */
export type EngineParams = ImageParams

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
  /** Read between steps; an `AbortSignal`, or an engine thread's flag (src/engine/thread.ts). */
  signal?: Pick<AbortSignal, 'aborted'>
  /** Refuse inputs with more pixels than this (decompression bombs). */
  limitInputPixels?: number
}
