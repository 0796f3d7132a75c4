/**
 * A quick structural check done before anything is sent: a file cut short (an interrupted download, a
 * half-copied asset) is reported as such and kept, without spending a request or a token on it.
 * It only looks for each format's end marker; decoding is the optimizer's job.
 */
import type { ImageKind } from '../contract/formats.ts'

function lastIndexOfBytes(data: Uint8Array, needle: number[], from = data.byteLength - needle.length): number {
  for (let i = Math.min(from, data.byteLength - needle.length); i >= 0; i--) {
    let match = true
    for (let j = 0; j < needle.length; j++) {
      if (data[i + j] !== needle[j]) {
        match = false
        break
      }
    }
    if (match) return i
  }
  return -1
}

/** Why the bytes cannot be a complete image of `kind`, or null when they look whole. */
export function truncationReason(kind: ImageKind, data: Uint8Array): string | null {
  switch (kind) {
    case 'jpeg':
      if (data[0] !== 0xff || data[1] !== 0xd8) return 'not a JPEG: the file does not start with a JPEG marker'
      // Any end-of-image marker after the start: trailing data after it (some cameras add some) is fine.
      return lastIndexOfBytes(data, [0xff, 0xd9]) > 1 ? null : 'truncated: the JPEG ends before its end-of-image marker'
    case 'png':
      if (data[0] !== 0x89 || data[1] !== 0x50 || data[2] !== 0x4e || data[3] !== 0x47) return 'not a PNG: the file does not start with the PNG signature'
      return lastIndexOfBytes(data, [0x49, 0x45, 0x4e, 0x44]) > 8 ? null : 'truncated: the PNG has no IEND chunk'
    case 'gif':
      if (data[0] !== 0x47 || data[1] !== 0x49 || data[2] !== 0x46) return 'not a GIF: the file does not start with GIF8'
      return data.subarray(-16).includes(0x3b) ? null : 'truncated: the GIF has no trailer byte'
    case 'webp': {
      if (data.byteLength < 12 || String.fromCharCode(...data.subarray(8, 12)) !== 'WEBP') return 'not a WebP: no RIFF/WEBP header'
      const declared = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(4, true) + 8
      return data.byteLength >= declared ? null : `truncated: the WebP declares ${declared} bytes but has ${data.byteLength}`
    }
    case 'svg':
      return null
  }
}
