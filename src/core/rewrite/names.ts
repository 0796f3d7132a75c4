/**
 * Names that follow the bytes (Rollup, Rolldown, Vite): an asset named with the bundler's hash of its
 * original bytes is renamed with the same hash of the bytes it now ships, and every emitted text file
 * that named it is updated. Only names that provably hold that hash are touched: a name from a custom
 * `assetFileNames` without `[hash]`, or a `public/` file, keeps its name.
 */
import path from 'node:path'
import { familyHashes, HASH_FAMILIES, type DigestMemo, type HashFamily } from './content-hash.ts'

/** Shorter than this, a match of the hash in a name could be chance. */
const MIN_HASH_LENGTH = 6

/** The SHA-256 of the old and new bytes, and where digests already made are kept. */
export interface KnownDigests {
  memo: DigestMemo
  before: string
  after: string
}

/**
 * The name `fileName` should have now that its bytes went from `before` to `after`, or null when its
 * name does not hold the bundler's hash of `before` (or the hash did not change). With `known`, digests
 * of those bytes made by an earlier build are taken from its memo, and new ones noted there.
 */
export async function followingName(fileName: string, before: Uint8Array, after: Uint8Array, known?: KnownDigests): Promise<string | null> {
  const base = path.posix.basename(fileName)
  const [knownBefore, knownAfter] = known ? [{ memo: known.memo, sha256: known.before }, { memo: known.memo, sha256: known.after }] : []
  // One family at a time, and the new bytes hashed only in the family the name holds.
  for (const family of Object.keys(HASH_FAMILIES) as HashFamily[]) {
    const old = await familyHashes(before, family, knownBefore)
    for (const characters of HASH_FAMILIES[family]) {
      const full = old[characters]!
      for (let length = full.length; length >= MIN_HASH_LENGTH; length--) {
        const at = base.lastIndexOf(full.slice(0, length))
        if (at === -1) continue
        const next = (await familyHashes(after, family, knownAfter))[characters]!.slice(0, length)
        if (next === full.slice(0, length)) return null
        const renamed = base.slice(0, at) + next + base.slice(at + length)
        return fileName.slice(0, fileName.length - base.length) + renamed
      }
    }
  }
  return null
}

/** Text files whose content may name other output files. */
const TEXT_FILE = /\.(m?js|cjs|css|html?|json|webmanifest|svg|xml|txt|map)$/i

export function isTextFile(fileName: string): boolean {
  return TEXT_FILE.test(fileName)
}

/**
 * `text` with every old base name of `renames` replaced by its new one, and how many were replaced. Base
 * names, not paths: a reference may be relative (`./horse-Ab12.png`) or carry any base URL. The hash in
 * them keeps them from meeting anything else; `.webp` siblings follow with the name they extend.
 */
export function replaceNames(text: string, renames: ReadonlyMap<string, string>): { text: string; replaced: number } {
  let replaced = 0
  let result = text
  for (const [from, to] of renames) {
    const oldBase = path.posix.basename(from)
    const newBase = path.posix.basename(to)
    if (!result.includes(oldBase)) continue
    const parts = result.split(oldBase)
    replaced += parts.length - 1
    result = parts.join(newBase)
  }
  return { text: result, replaced }
}
