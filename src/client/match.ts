/**
 * Pairs result items with the items of a request. The contract says results come in input order and carry
 * `file_name` (URL-encoded or not). Names decide when they all line up (a batch never holds two equal names);
 * otherwise order decides when the counts agree and no name contradicts it (a server may rename files);
 * anything else is unmatched.
 */
import { safeDecode } from './inputs.ts'

export interface ResultItem {
  success?: unknown
  file_name?: unknown
  original_size?: unknown
  optimized_size?: unknown
  url?: unknown
  webp?: unknown
  error?: unknown
}

export function matchResults(uploadNames: readonly string[], results: readonly unknown[]): Array<ResultItem | undefined> {
  const items = results.map((r) => (r && typeof r === 'object' ? (r as ResultItem) : {}))
  const nameOf = (r: ResultItem) => (typeof r.file_name === 'string' ? safeDecode(r.file_name) : undefined)
  const wanted = uploadNames.map((n) => safeDecode(n))

  if (items.length === wanted.length && items.every((r, i) => nameOf(r) === wanted[i])) return items

  const byName = new Map<string, ResultItem>()
  for (const r of items) {
    const name = nameOf(r)
    if (name !== undefined && !byName.has(name)) byName.set(name, r)
  }
  if (wanted.every((n) => byName.has(n))) return wanted.map((n) => byName.get(n))
  // Order may decide only when no name contradicts it: a result named like another upload at another
  // index says the server reordered, and pairing by position would give one file another's image.
  const wantedSet = new Set(wanted)
  const orderHolds = items.every((r, i) => {
    const name = nameOf(r)
    return name === undefined || !wantedSet.has(name) || name === wanted[i]
  })
  if (items.length === wanted.length && orderHolds) return items
  return wanted.map((n) => byName.get(n))
}
