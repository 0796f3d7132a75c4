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

function hasher(which: Algorithm): Promise<IHasher> {
  return which === 'xxh128' ? (hasher128 ??= xxh128()) : (hasher64 ??= xxh64())
}

type Algorithm = 'xxh128' | 'xxh64'

/** At most this many digests are remembered: about 110 bytes each in the cache's note. */
const MEMO_LIMIT = 4096
const MEMO_ID = /^(xxh128|xxh64):[0-9a-f]{64}$/
const MEMO_DIGEST = { xxh128: /^[0-9a-f]{32}$/, xxh64: /^[0-9a-f]{16}$/ } as const

/**
 * Digests already made, by algorithm and SHA-256 of the bytes (which the pipeline has for every image and
 * every result, cached ones included): a rebuild from the cache renames its images without hashing their
 * bytes again, and without loading hash-wasm. Kept in the cache as a note (`toJSON`); an entry that is not
 * an algorithm, a SHA-256 and a digest of that algorithm's length is ignored.
 */
export class DigestMemo {
  readonly #known = new Map<string, string>()
  #added = false

  constructor(entries: Record<string, unknown> = {}) {
    for (const [id, digest] of Object.entries(entries)) {
      const algorithm = MEMO_ID.exec(id)?.[1] as Algorithm | undefined
      if (algorithm && typeof digest === 'string' && MEMO_DIGEST[algorithm].test(digest)) this.#remember(id, digest)
    }
  }

  /** What to write back when a digest was made since the last call (or since the memo was read), else null. */
  unsaved(): Record<string, string> | null {
    if (!this.#added) return null
    this.#added = false
    return this.toJSON()
  }

  get(algorithm: Algorithm, sha256: string): Uint8Array | null {
    const id = `${algorithm}:${sha256}`
    const hex = this.#known.get(id)
    if (hex === undefined) return null
    // Used again: moved to the newest end, so what falls off the limit is what no recent build used.
    this.#remember(id, hex)
    return new Uint8Array(Buffer.from(hex, 'hex'))
  }

  set(algorithm: Algorithm, sha256: string, digest: Uint8Array): void {
    this.#remember(`${algorithm}:${sha256}`, Buffer.from(digest).toString('hex'))
    this.#added = true
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#known)
  }

  #remember(id: string, hex: string): void {
    this.#known.delete(id)
    this.#known.set(id, hex)
    // The oldest goes first: what no recent build used.
    if (this.#known.size > MEMO_LIMIT) this.#known.delete(this.#known.keys().next().value!)
  }
}

/** Bytes, with their SHA-256 and the memo to look their digests up in (and to note new ones). */
export interface KnownBytes {
  sha256: string
  memo: DigestMemo
}

async function digest(which: Algorithm, data: Uint8Array, known?: KnownBytes): Promise<Uint8Array> {
  const remembered = known?.memo.get(which, known.sha256)
  if (remembered) return remembered
  const h = await hasher(which)
  h.init()
  h.update(data)
  const made = new Uint8Array(h.digest('binary'))
  known?.memo.set(which, known.sha256, made)
  return made
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
export async function familyHashes(data: Uint8Array, family: HashFamily, known?: KnownBytes): Promise<Partial<Record<HashCharacters, string>>> {
  if (family === 'esbuild') return { base32: base32(await digest('xxh64', data, known)) }
  // hash-wasm gives canonical (big-endian) digests; Rollup and Rolldown encode the little-endian bytes.
  const littleEndian = (await digest('xxh128', data, known)).reverse()
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
