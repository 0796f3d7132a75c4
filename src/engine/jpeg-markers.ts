/**
 * Truly lossless JPEG savings without a decoder: drop metadata segments, copy the entropy-coded data
 * byte for byte. The decoded pixels cannot change, because no table and no scan is touched.
 */

const SOS = 0xda
const APP0 = 0xe0
const APP1 = 0xe1
const APP2 = 0xe2
const APP14 = 0xee
const COM = 0xfe

/**
 * Returns the JPEG without EXIF/XMP/IPTC/comments (APP1, APP3-APP13, APP15, COM, MPF), keeping what decoding
 * needs: JFIF (APP0), the ICC profile (APP2 "ICC_PROFILE"), Adobe's colour-transform flag (APP14).
 * When `orientation` is not 1, a minimal EXIF block carrying only it is written, so the photo stays upright.
 * Returns null when the structure is not understood (the caller keeps the input).
 */
export function stripJpegMetadata(jpeg: Uint8Array, orientation: number): Uint8Array | null {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return null
  const kept: { marker: number; bytes: Uint8Array }[] = []
  let i = 2
  while (i < jpeg.length) {
    if (jpeg[i] !== 0xff) return null
    // Fill bytes: any number of 0xFF may precede a marker.
    while (i < jpeg.length && jpeg[i] === 0xff) i++
    if (i + 2 >= jpeg.length) return null
    const marker = jpeg[i]!
    if (marker === 0xd8 || marker === 0xd9 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) return null
    const length = (jpeg[i + 1]! << 8) | jpeg[i + 2]!
    const end = i + 1 + length
    if (length < 2 || end > jpeg.length) return null
    if (marker === SOS) {
      // Readers look for EXIF first or right after JFIF.
      const at = kept[0]?.marker === APP0 ? 1 : 0
      if (orientation !== 1) kept.splice(at, 0, { marker: APP1, bytes: orientationExif(orientation) })
      return concat([jpeg.subarray(0, 2), ...kept.map((k) => k.bytes), jpeg.subarray(i - 1)])
    }
    const segment = jpeg.subarray(i - 1, end)
    if (keepSegment(marker, jpeg.subarray(i + 3, end))) kept.push({ marker, bytes: segment })
    i = end
  }
  return null
}

function keepSegment(marker: number, payload: Uint8Array): boolean {
  if (marker === APP0 || marker === APP14) return true
  if (marker === APP2) return startsWithAscii(payload, 'ICC_PROFILE\0')
  if (marker === APP1 || (marker >= 0xe3 && marker <= 0xef) || marker === COM) return false
  // Tables, frame headers, restart intervals...: everything decoding needs.
  return true
}

function startsWithAscii(bytes: Uint8Array, s: string): boolean {
  if (bytes.length < s.length) return false
  for (let k = 0; k < s.length; k++) if (bytes[k] !== s.charCodeAt(k)) return false
  return true
}

/** APP1 "Exif\0\0" + big-endian TIFF header + one IFD with the Orientation tag (0x0112). */
export function orientationExif(orientation: number): Uint8Array {
  const tiff = [
    0x4d, 0x4d, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08, // "MM", 42, IFD at offset 8
    0x00, 0x01, // one entry
    0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, // Orientation, SHORT, count 1
    0x00, orientation & 0xff, 0x00, 0x00, // value, padded
    0x00, 0x00, 0x00, 0x00, // no next IFD
  ]
  const payload = [...'Exif\0\0'].map((c) => c.charCodeAt(0)).concat(tiff)
  const length = payload.length + 2
  return Uint8Array.from([0xff, APP1, length >> 8, length & 0xff, ...payload])
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}
