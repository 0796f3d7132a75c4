/**
 * The `[hash]` Rollup 4 and Rolldown (so Vite 8) put in an emitted asset's name: XXH3-128 of the asset's
 * bytes, its 16 little-endian bytes read as one big-endian number, written in base 64, 36 or 16
 * (`output.hashCharacters`; leading zero bytes kept as zero digits), except hex, which is the plain
 * hex of those bytes. The name takes the first 8
 * characters by default (`[hash:N]` up to 21 in Rollup). Verified against Rollup's own native hasher in
 * test/core/rewrite.test.ts.
 */
import { createXXHash128, type IHasher } from 'hash-wasm'

const ALPHABETS = {
  base64: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
  base36: 'abcdefghijklmnopqrstuvwxyz0123456789',
} as const

export type HashCharacters = keyof typeof ALPHABETS | 'hex'

let hasher: Promise<IHasher> | null = null

function encode(bytes: Uint8Array, characters: keyof typeof ALPHABETS): string {
  const alphabet = ALPHABETS[characters]
  const base = BigInt(alphabet.length)
  let value = BigInt(`0x${Buffer.from(bytes).toString('hex')}`)
  let digits = ''
  while (value > 0n) {
    digits = alphabet[Number(value % base)]! + digits
    value /= base
  }
  const zeros = bytes.findIndex((byte) => byte !== 0)
  return alphabet[0]!.repeat(zeros === -1 ? bytes.length : zeros) + digits
}

/** The full-length hash of `data` in each of the bundlers' character sets. */
export async function bundlerHashes(data: Uint8Array): Promise<Record<HashCharacters, string>> {
  hasher ??= createXXHash128()
  const h = await hasher
  h.init()
  h.update(data)
  // hash-wasm gives the canonical (big-endian) digest; the bundlers encode the little-endian bytes.
  const littleEndian = new Uint8Array(h.digest('binary')).reverse()
  return { base64: encode(littleEndian, 'base64'), base36: encode(littleEndian, 'base36'), hex: Buffer.from(littleEndian).toString('hex') }
}
