/**
 * The content-hash cache: one file per outcome, keyed by the image's bytes, every option that changes
 * the output, and which optimizer produced it. It is what makes a rebuild of unchanged sources cost zero
 * API calls and zero tokens.
 *
 * Entry file: `<dir>/<key[0..2]>/<key>.bin`
 *   line 1  `megaoptim-cache 1`
 *   line 2  sha256 (hex) of everything after this line
 *   line 3  header JSON (no key material: only hashes, sizes and the outcome)
 *   then    the optimized bytes, then the WebP bytes
 * Written atomically (temp + rename), so concurrent builds sharing a directory never see half an entry;
 * every read re-checks line 2 against the bytes and a damaged entry is deleted and treated as a miss.
 * Line 2 covers the header and both payloads, so a read does not hash the payloads a second time for the
 * header's own sums (they stay in the format, written as before).
 */
import { createHash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { readdir, rm, stat, utimes } from 'node:fs/promises'
import path from 'node:path'
import { writeFileAtomic } from './atomic.ts'

const MAGIC = 'megaoptim-cache 1'
const KEY_PATTERN = /^[0-9a-f]{64}$/
/** Touch an entry on a hit at most this often: pruning goes by last use without a write per hit. */
const TOUCH_AFTER_MS = 24 * 60 * 60 * 1000
/** Temp files this old belong to a crashed build. */
const STALE_TEMP_MS = 60 * 60 * 1000

export type CachedOutcome =
  /**
   * Smaller bytes (and maybe a WebP) to ship instead of the original; `sha256` of `data` when known (always
   * on a read: the entry's header holds it; the one written is computed from `data` whatever this says).
   */
  | { outcome: 'optimized'; data: Uint8Array; webp: Uint8Array | null; sha256?: string }
  /** Nothing worth gaining: ship the original, never ask again. */
  | { outcome: 'no-gain'; webp: Uint8Array | null; reason?: string }
  /** The image itself cannot be processed (e.g. truncated): ship the original, never ask again. */
  | { outcome: 'unprocessable'; reason: string }

interface Header {
  key: string
  outcome: CachedOutcome['outcome']
  reason?: string
  dataSize: number
  dataSha256: string | null
  webpSize: number
  webpSha256: string | null
  createdAt: string
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * The cache key. `fingerprint` holds every output-affecting option, `identity` names the optimizer
 * (hosted API, a self-hosted URL, or the embedded engine and its version) but never a key.
 */
export function cacheKey(contentSha256: string, fingerprint: Record<string, unknown>, identity: string): string {
  // By code unit: the keys are ASCII names starting lowercase, where this is the order localeCompare gave
  // the keys made so far (test/core/cache.test.ts holds them to it), without starting up ICU's collator
  // (about 10 ms of a warm build).
  const sorted = Object.fromEntries(Object.entries(fingerprint).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return sha256(JSON.stringify({ v: 1, content: contentSha256, options: sorted, identity }))
}

/**
 * The key under which bytes this package produced are remembered as its own output: their content alone,
 * so they are recognised whatever the options or the optimizer of the next run.
 */
export function ownOutputKey(contentSha256: string): string {
  return cacheKey(contentSha256, { ownOutput: true }, 'unplugin-megaoptim')
}

export interface CacheStats {
  hits: number
  misses: number
  writes: number
  /** Entries found damaged and discarded. */
  corrupt: number
}

export class ImageCache {
  readonly dir: string
  readonly stats: CacheStats = { hits: 0, misses: 0, writes: 0, corrupt: 0 }

  constructor(dir: string) {
    this.dir = dir
  }

  fileOf(key: string): string {
    if (!KEY_PATTERN.test(key)) throw new Error(`invalid cache key ${JSON.stringify(key)}`)
    return path.join(this.dir, key.slice(0, 2), `${key}.bin`)
  }

  /** The stored outcome, or null on a miss or a damaged entry (which is deleted). */
  async get(key: string): Promise<CachedOutcome | null> {
    const file = this.fileOf(key)
    let raw: Buffer
    let mtimeMs: number
    try {
      ;({ raw, mtimeMs } = readWhole(file))
    } catch {
      this.stats.misses++
      return null
    }
    const entry = decode(raw, key)
    if (!entry) {
      this.stats.corrupt++
      this.stats.misses++
      await rm(file, { force: true }).catch(() => {})
      return null
    }
    this.stats.hits++
    await this.#touch(file, mtimeMs)
    return entry
  }

  async set(key: string, entry: CachedOutcome): Promise<void> {
    await writeFileAtomic(this.fileOf(key), encode(key, entry))
    this.stats.writes++
  }

  /** A small JSON note kept beside the entries (e.g. the embedded engine last seen); null when absent or unreadable. */
  async readNote(name: string): Promise<Record<string, unknown> | null> {
    try {
      // At once, as entries are (see readWhole): a note is a few hundred bytes.
      const value = JSON.parse(readFileSync(path.join(this.dir, `${name}.json`), 'utf8')) as unknown
      return value && typeof value === 'object' ? (value as Record<string, unknown>) : null
    } catch {
      return null
    }
  }

  async writeNote(name: string, value: Record<string, unknown>): Promise<void> {
    await writeFileAtomic(path.join(this.dir, `${name}.json`), `${JSON.stringify(value, null, 2)}\n`)
  }

  /**
   * `prune()`, unless another build did it less than `intervalMs` ago (told by the mtime of a marker
   * file, so concurrent builds sharing the directory agree). Returns how many entries went.
   */
  async pruneAtMostEvery(intervalMs: number, maxAgeMs: number, now = Date.now()): Promise<number> {
    const marker = path.join(this.dir, 'last-prune')
    const last = await stat(marker).then((info) => info.mtimeMs, () => 0)
    if (now - last < intervalMs) return 0
    await writeFileAtomic(marker, new Date(now).toISOString())
    await utimes(marker, new Date(now), new Date(now))
    return this.prune(maxAgeMs, now)
  }

  /** Deletes entries unused for `maxAgeMs` and temp files left by crashed builds. Returns how many went. */
  async prune(maxAgeMs: number, now = Date.now()): Promise<number> {
    let removed = 0
    let shards: string[]
    try {
      shards = await readdir(this.dir)
    } catch {
      return 0
    }
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue
      const shardDir = path.join(this.dir, shard)
      let names: string[]
      try {
        names = await readdir(shardDir)
      } catch {
        continue
      }
      for (const name of names) {
        const file = path.join(shardDir, name)
        const info = await stat(file).catch(() => null)
        if (!info?.isFile()) continue
        const isTemp = name.endsWith('.tmp')
        const limit = isTemp ? STALE_TEMP_MS : maxAgeMs
        if (!isTemp && !name.endsWith('.bin')) continue
        if (now - info.mtimeMs > limit) {
          await rm(file, { force: true })
          removed++
        }
      }
    }
    return removed
  }

  async #touch(file: string, mtimeMs: number): Promise<void> {
    if (Date.now() - mtimeMs <= TOUCH_AFTER_MS) return
    try {
      const now = new Date()
      await utimes(file, now, now)
    } catch {
      // A concurrent prune may have removed it; the hit is still good.
    }
  }
}

/**
 * An entry's bytes and its age (for #touch), from one open, read synchronously. A warm build reads one
 * entry per image, and a promise-based read is a FileHandle and four trips through the thread pool (open,
 * stat, read, close), each resumed on the main thread: on the large app's 79 entries that cost about
 * 70 ms more of the build (and more CPU) than reading each small file at once, usually from the page cache.
 */
function readWhole(file: string): { raw: Buffer; mtimeMs: number } {
  const fd = openSync(file, 'r')
  try {
    const { size, mtimeMs } = fstatSync(fd)
    // Not from Buffer's shared pool: the hits handed out are views of this buffer.
    const raw = Buffer.allocUnsafeSlow(size)
    let filled = 0
    while (filled < size) {
      const read = readSync(fd, raw, filled, size - filled, filled)
      if (read === 0) break
      filled += read
    }
    // Shorter than its size said: decode() finds line 2 wrong and the entry is discarded.
    return { raw: raw.subarray(0, filled), mtimeMs }
  } finally {
    closeSync(fd)
  }
}

function encode(key: string, entry: CachedOutcome): Buffer {
  const data = entry.outcome === 'optimized' ? entry.data : null
  const webp = entry.outcome === 'unprocessable' ? null : entry.webp
  const header: Header = {
    key,
    outcome: entry.outcome,
    ...(entry.outcome !== 'optimized' && entry.reason ? { reason: entry.reason } : {}),
    dataSize: data?.byteLength ?? 0,
    dataSha256: data ? sha256(data) : null,
    webpSize: webp?.byteLength ?? 0,
    webpSha256: webp ? sha256(webp) : null,
    createdAt: new Date().toISOString(),
  }
  const body = Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), data ?? new Uint8Array(), webp ?? new Uint8Array()])
  return Buffer.concat([Buffer.from(`${MAGIC}\n${sha256(body)}\n`), body])
}

function decode(raw: Buffer, key: string): CachedOutcome | null {
  const magicEnd = raw.indexOf(10)
  if (magicEnd < 0 || raw.subarray(0, magicEnd).toString() !== MAGIC) return null
  const sumEnd = raw.indexOf(10, magicEnd + 1)
  if (sumEnd < 0) return null
  const body = raw.subarray(sumEnd + 1)
  if (raw.subarray(magicEnd + 1, sumEnd).toString() !== sha256(body)) return null
  const headerEnd = body.indexOf(10)
  if (headerEnd < 0) return null
  let header: Header
  try {
    header = JSON.parse(body.subarray(0, headerEnd).toString()) as Header
  } catch {
    return null
  }
  if (header.key !== key) return null
  const payload = body.subarray(headerEnd + 1)
  if (payload.byteLength !== header.dataSize + header.webpSize) return null
  const data = payload.subarray(0, header.dataSize)
  const webp = payload.subarray(header.dataSize)
  // Present exactly when there is a payload (their values are covered by line 2's sum).
  if ((typeof header.dataSha256 === 'string') !== header.dataSize > 0) return null
  if ((typeof header.webpSha256 === 'string') !== header.webpSize > 0) return null
  // Views, not copies: the entry's buffer is little more than these bytes (one header line), and a warm
  // build would otherwise copy every cached image once more.
  const view = (part: Buffer) => new Uint8Array(part.buffer, part.byteOffset, part.byteLength)
  const webpBytes = header.webpSize ? view(webp) : null
  switch (header.outcome) {
    case 'optimized':
      return header.dataSize > 0 ? { outcome: 'optimized', data: view(data), webp: webpBytes, sha256: header.dataSha256! } : null
    case 'no-gain':
      return typeof header.reason === 'string' ? { outcome: 'no-gain', webp: webpBytes, reason: header.reason } : { outcome: 'no-gain', webp: webpBytes }
    case 'unprocessable':
      return typeof header.reason === 'string' ? { outcome: 'unprocessable', reason: header.reason } : null
    default:
      return null
  }
}
