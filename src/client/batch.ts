/**
 * Packs unique items into `/optimize` requests: at most `size` per request (5 is the API's maximum), files
 * and URLs never mixed (`type=files` vs `type=urls`), and no two items with the same (decoded) name in one
 * request, so each result `file_name` points at exactly one item. Input order is kept.
 */
import { type UniqueItem, safeDecode } from './inputs.ts'

export interface Batch {
  kind: 'file' | 'url'
  items: UniqueItem[]
}

export function makeBatches(items: readonly UniqueItem[], size: number): Batch[] {
  const batches: Batch[] = []
  const open: Record<'file' | 'url', Batch[]> = { file: [], url: [] }
  for (const item of items) {
    const kind = item.source.kind === 'url' ? 'url' : 'file'
    const name = safeDecode(item.uploadName)
    let batch = open[kind].find((b) => !b.items.some((other) => safeDecode(other.uploadName) === name))
    if (!batch) {
      batch = { kind, items: [] }
      open[kind].push(batch)
      batches.push(batch)
    }
    batch.items.push(item)
    if (batch.items.length >= size) open[kind].splice(open[kind].indexOf(batch), 1)
  }
  return batches
}
