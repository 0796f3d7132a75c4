/**
 * The `[hash]` bundlers put in an asset's name, so a name can be shown to hold the hash of the old bytes
 * and given the same hash of the new ones.
 *
 * Rollup 4 and Rolldown (so Vite 8) put in an emitted asset's name: XXH3-128 of the asset's
 * bytes, its 16 little-endian bytes read as one big-endian number, written in base 64, 36 or 16
 * (`output.hashCharacters`; leading zero bytes kept as zero digits), except hex, which is the plain
 * hex of those bytes. The name takes the first 8
 * characters by default (`[hash:N]` up to 21 in Rollup). Verified against Rollup's own native hasher in
 * test/core/rewrite.test.ts.
 *
 * esbuild: XXH64 of the bytes, its 8 big-endian bytes in RFC 4648 base32, the first 8 characters.
 */
import { createRequire } from 'node:module'
import type { createXXHash128, createXXHash64, IHasher } from 'hash-wasm'

const ALPHABETS = {
  base64: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
  base36: 'abcdefghijklmnopqrstuvwxyz0123456789',
} as const

/** Rollup/Rolldown's three `hashCharacters`, and esbuild's base32. */
export type HashCharacters = keyof typeof ALPHABETS | 'hex' | 'base32'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/**
 * hash-wasm's one-algorithm builds, loaded on the first rename: its main entry inlines every algorithm it
 * has (ten times the JavaScript to parse), and a build whose images kept their bytes needs neither.
 */
const load = createRequire(import.meta.url)
let hasher128: Promise<IHasher> | null = null
let hasher64: Promise<IHasher> | null = null

function xxh128(): Promise<IHasher> {
  const { createXXHash128: create } = load('hash-wasm/dist/xxhash128.umd.min.js') as { createXXHash128: typeof createXXHash128 }
  return create()
}

function xxh64(): Promise<IHasher> {
  const { createXXHash64: create } = load('hash-wasm/dist/xxhash64.umd.min.js') as { createXXHash64: typeof createXXHash64 }
  return create()
}

function hasher(which: 'xxh128' | 'xxh64'): Promise<IHasher> {
  return which === 'xxh128' ? (hasher128 ??= xxh128()) : (hasher64 ??= xxh64())
}

/**
 * Starts making the hasher of `family` (WebAssembly compiles off the main thread), so that it is ready by
 * the time the optimized bytes are: an adapter calls it when its build has images that may be renamed.
 */
export function prepareHasher(family: HashFamily): void {
  hasher(family === 'rollup' ? 'xxh128' : 'xxh64').catch(() => {})
}

async function digest(which: 'xxh128' | 'xxh64', data: Uint8Array): Promise<Uint8Array> {
  const h = await hasher(which)
  h.init()
  h.update(data)
  return new Uint8Array(h.digest('binary'))
}

function base32(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out
}

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

/** Which hash each `hashCharacters` is written from: Rollup's and Rolldown's XXH3-128, esbuild's XXH64. */
export const HASH_FAMILIES = { rollup: ['base64', 'base36', 'hex'], esbuild: ['base32'] } as const satisfies Record<string, readonly HashCharacters[]>

export type HashFamily = keyof typeof HASH_FAMILIES

/** The full-length hashes of `data` of one family, as its bundlers write them. */
export async function familyHashes(data: Uint8Array, family: HashFamily): Promise<Partial<Record<HashCharacters, string>>> {
  if (family === 'esbuild') return { base32: base32(await digest('xxh64', data)) }
  // hash-wasm gives canonical (big-endian) digests; Rollup and Rolldown encode the little-endian bytes.
  const littleEndian = (await digest('xxh128', data)).reverse()
  return {
    base64: encode(littleEndian, 'base64'),
    base36: encode(littleEndian, 'base36'),
    hex: Buffer.from(littleEndian).toString('hex'),
  }
}

/** The full-length hash of `data` as each bundler would write it. */
export async function bundlerHashes(data: Uint8Array): Promise<Record<HashCharacters, string>> {
  return { ...(await familyHashes(data, 'rollup')), ...(await familyHashes(data, 'esbuild')) } as Record<HashCharacters, string>
}
