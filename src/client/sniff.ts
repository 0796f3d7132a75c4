/**
 * Image format by magic bytes. The API's Content-Types cannot be trusted, and a download that is an HTML
 * error page with status 200 must not replace an image, so both inputs and downloads are sniffed.
 */
export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp'

export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg'
  if (
    bytes.length >= 8 &&
    bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 &&
    bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a
  ) return 'png'
  if (bytes.length >= 6 && ascii(bytes, 0, 6).match(/^GIF8[79]a$/)) return 'gif'
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp'
  return null
}

/** The format a file name's extension promises, if any (used for URL inputs, whose bytes we never see). */
export function formatFromName(name: string): ImageFormat | null {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase()
  switch (ext) {
    case 'jpg':
    case 'jpeg':
    case 'jpe':
      return 'jpeg'
    case 'png':
      return 'png'
    case 'gif':
      return 'gif'
    case 'webp':
      return 'webp'
    default:
      return null
  }
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end))
}
