/**
 * The image formats of the contract, and the one table from file extensions to them. Everything that
 * sniffs bytes or reads an extension (the plugin's filter, the CLI, the client, the server, the engine)
 * imports it from here.
 */
import { createRequire } from 'node:module'
import type { imageSize as ImageSize } from 'image-size'

/** The raster formats the API takes; a result keeps its input's format. */
export const RASTER_FORMATS = ['jpeg', 'png', 'gif', 'webp'] as const
export type ImageFormat = (typeof RASTER_FORMATS)[number]

/** What the plugin and the CLI handle: the rasters, plus SVG (optimized locally with svgo, never sent). */
export type ImageKind = ImageFormat | 'svg'

/** File extensions (lower case, no dot) and the kind each promises. */
export const KIND_BY_EXTENSION: Readonly<Record<string, ImageKind>> = Object.freeze({
  jpg: 'jpeg',
  jpeg: 'jpeg',
  jpe: 'jpeg',
  png: 'png',
  gif: 'gif',
  webp: 'webp',
  svg: 'svg',
})

export const CONTENT_TYPES: Readonly<Record<ImageKind, string>> = Object.freeze({
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
})

/** The kind a file name's extension promises, or null for anything else. */
export function kindFromName(name: string): ImageKind | null {
  const dot = name.lastIndexOf('.')
  if (dot < 0) return null
  return KIND_BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? null
}

/** The raster format a name promises (used for URL inputs, whose bytes the client never sees). */
export function formatFromName(name: string): ImageFormat | null {
  const kind = kindFromName(name)
  return kind === 'svg' ? null : kind
}

/**
 * The real format, from the magic bytes only: names and Content-Types lie, and a download that is an HTML
 * error page with status 200 must not replace an image. Null for anything the API does not take.
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg'
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png'
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif'
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes.subarray(8), ascii('WEBP'))) return 'webp'
  return null
}

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  if (bytes.length < prefix.length) return false
  return prefix.every((b, i) => bytes[i] === b)
}

function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0))
}

/**
 * image-size, loaded on the first call: only an image sent to the engine needs its header read, and
 * loading every format's parser is about 15 ms of a warm build, which sends none.
 */
const load = createRequire(import.meta.url)
let imageSize: typeof ImageSize | null = null
function imageSizeOf(): typeof ImageSize {
  return (imageSize ??= (load('image-size') as { imageSize: typeof ImageSize }).imageSize)
}

/**
 * The pixels an image declares in its header (width × height): what it costs to decode and optimize.
 * Null when the header cannot be read. The frames of an animated GIF/WebP are not in image-size's answer,
 * so those count as one frame; the engine's own limit (`limitInputPixels`, frames included) still refuses
 * any that would not fit.
 */
export function headerPixels(bytes: Uint8Array): number | null {
  try {
    const { width, height } = imageSizeOf()(bytes)
    return width > 0 && height > 0 ? width * height : null
  } catch {
    return null
  }
}
