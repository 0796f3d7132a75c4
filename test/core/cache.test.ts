import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { cacheKey, ImageCache, ownOutputKey, sha256 } from '../../src/core/cache.ts'
import { DEFAULT_IMAGE_PARAMS } from '../../src/contract/params.ts'
import { backendIdentity } from '../../src/core/optimizer.ts'
import { resolveOptions } from '../../src/core/options.ts'

const tmpRoot = path.resolve('test/.tmp')
let dir: string

beforeEach(async () => {
  await mkdir(tmpRoot, { recursive: true })
  dir = await mkdtemp(path.join(tmpRoot, 'cache-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const bytes = (text: string) => new Uint8Array(Buffer.from(text))
const options = { compression: 'intelligent', webp: false, keepExif: false, cmykToRgb: true, maxWidth: 0, maxHeight: 0 }

async function allFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name))
}

describe('cacheKey', () => {
  const content = sha256('image bytes')

  it('changes with the bytes, with every output-affecting option and with the optimizer identity', () => {
    const base = cacheKey(content, options, 'embedded@1.0.0')
    expect(base).toMatch(/^[0-9a-f]{64}$/)
    expect(cacheKey(sha256('other bytes'), options, 'embedded@1.0.0')).not.toBe(base)
    for (const [name, value] of Object.entries({ compression: 'lossless', webp: true, keepExif: true, cmykToRgb: false, maxWidth: 800, maxHeight: 600 })) {
      expect(cacheKey(content, { ...options, [name]: value }, 'embedded@1.0.0'), name).not.toBe(base)
    }
    expect(cacheKey(content, options, 'embedded@1.0.1')).not.toBe(base)
    expect(cacheKey(content, options, 'hosted:megaoptim')).not.toBe(base)
  })

  it('makes the keys it always made (a changed key would turn every cached image into a miss)', () => {
    expect(cacheKey(content, options, 'embedded@1.0.0')).toBe('903f3a57334861f89f622102f6bac3c17e8c700bdb25b30f0227be4e37a8d107')
    expect(cacheKey(content, { svg: 'svgo4-default-keep-viewbox-ids-v1' }, 'local:svgo')).toBe('568adaeab9f6ef3b15e1d328c91dbbc6e641fe3b40287e85fc82e28a45a0db83')
    expect(ownOutputKey(content)).toBe('6a1eb7da9fd4a52c9a154a735f3cf17a3b16a406a954c699dd220a0a75661103')
    // The option names are sorted by code unit, which for these names is the order localeCompare gives.
    const names = [...Object.keys(DEFAULT_IMAGE_PARAMS), 'svg', 'ownOutput']
    expect([...names].sort()).toEqual([...names].sort((a, b) => a.localeCompare(b)))
  })

  it('does not depend on the order of the options', () => {
    const reversed = Object.fromEntries(Object.entries(options).reverse())
    expect(cacheKey(content, reversed, 'x')).toBe(cacheKey(content, options, 'x'))
  })

  it('never depends on the API key: same identity for two keys, another for another endpoint', () => {
    const a = resolveOptions({ apiKey: 'a'.repeat(32) }).backend
    const b = resolveOptions({ apiKey: 'b'.repeat(32) }).backend
    const selfHosted = resolveOptions({ apiKey: 'a'.repeat(32), endpoint: 'http://127.0.0.1:1/v1' }).backend
    expect(backendIdentity(a)).toBe(backendIdentity(b))
    expect(backendIdentity(a)).not.toContain('a'.repeat(32))
    expect(backendIdentity(selfHosted)).not.toBe(backendIdentity(a))
    expect(backendIdentity({ kind: 'embedded' })).toMatch(/^embedded@\d+\.\d+\.\d+/)
  })
})

describe('ImageCache', () => {
  const key = cacheKey(sha256('original'), options, 'embedded@test')

  it('stores and returns optimized, no-gain and unprocessable outcomes', async () => {
    const cache = new ImageCache(dir)
    expect(await cache.get(key)).toBeNull()
    await cache.set(key, { outcome: 'optimized', data: bytes('small'), webp: bytes('webp!') })
    expect(await cache.get(key)).toEqual({ outcome: 'optimized', data: bytes('small'), webp: bytes('webp!'), sha256: sha256(bytes('small')) })

    const noGain = cacheKey(sha256('x'), options, 'e')
    await cache.set(noGain, { outcome: 'no-gain', webp: null })
    expect(await cache.get(noGain)).toEqual({ outcome: 'no-gain', webp: null })

    const broken = cacheKey(sha256('y'), options, 'e')
    await cache.set(broken, { outcome: 'unprocessable', reason: 'truncated JPEG' })
    expect(await cache.get(broken)).toEqual({ outcome: 'unprocessable', reason: 'truncated JPEG' })
    expect(cache.stats).toMatchObject({ hits: 3, misses: 1, writes: 3, corrupt: 0 })
  })

  it('discards a corrupt entry instead of serving it: flipped byte, truncation, wrong key, garbage', async () => {
    const cache = new ImageCache(dir)
    const file = cache.fileOf(key)
    const good = async () => {
      await cache.set(key, { outcome: 'optimized', data: bytes('optimized bytes'), webp: null })
      return readFile(file)
    }
    const damages: [string, (raw: Buffer) => Buffer][] = [
      ['flipped payload byte', (raw) => { const c = Buffer.from(raw); c.writeUInt8(c.readUInt8(c.length - 2) ^ 0xff, c.length - 2); return c }],
      ['truncated', (raw) => raw.subarray(0, raw.length - 3)],
      ['empty', () => Buffer.alloc(0)],
      ['garbage', () => Buffer.from('not a cache entry at all')],
    ]
    for (const [what, damage] of damages) {
      await writeFile(file, damage(await good()))
      expect(await cache.get(key), what).toBeNull()
      await expect(stat(file), what).rejects.toThrow() // deleted, so the next build refetches and rewrites it
    }
    // A valid entry stored under another key's name is not served either.
    const other = cacheKey(sha256('other'), options, 'e')
    await cache.set(other, { outcome: 'optimized', data: bytes('other'), webp: null })
    await writeFile(file, await readFile(cache.fileOf(other)))
    expect(await cache.get(key)).toBeNull()
    expect(cache.stats.corrupt).toBe(damages.length + 1)
  })

  it('writes atomically: no temp file is left and no reader ever sees half an entry', async () => {
    const cache = new ImageCache(dir)
    const big = new Uint8Array(2 * 1024 * 1024).fill(7)
    await Promise.all([
      ...Array.from({ length: 8 }, () => cache.set(key, { outcome: 'optimized', data: big, webp: null })),
      ...Array.from({ length: 8 }, async () => {
        const got = await cache.get(key)
        if (got) expect(got).toEqual({ outcome: 'optimized', data: big, webp: null, sha256: sha256(big) })
      }),
    ])
    expect(cache.stats.corrupt).toBe(0)
    expect((await allFiles(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('is safe for concurrent builds in separate processes sharing one directory', async () => {
    const script = `
      import { ImageCache } from ${JSON.stringify(path.resolve('src/core/cache.ts'))}
      const cache = new ImageCache(process.argv[1])
      const data = new Uint8Array(512 * 1024).fill(Number(process.argv[2]) % 2)
      for (let i = 0; i < 20; i++) {
        await cache.set(${JSON.stringify(key)}, { outcome: 'optimized', data, webp: null })
        const got = await cache.get(${JSON.stringify(key)})
        if (!got || got.outcome !== 'optimized' || got.data.byteLength !== data.byteLength) process.exit(3)
      }
      if (cache.stats.corrupt) process.exit(4)
    `
    const run = (n: number) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir, String(n)], { stdio: 'inherit' })
        child.on('error', reject)
        child.on('exit', (code) => resolve(code ?? -1))
      })
    expect(await Promise.all([run(1), run(2), run(3)])).toEqual([0, 0, 0])
  })

  it('prunes entries unused for maxAge and stale temp files, keeps the rest', async () => {
    const cache = new ImageCache(dir)
    const old = cacheKey(sha256('old'), options, 'e')
    const fresh = cacheKey(sha256('fresh'), options, 'e')
    await cache.set(old, { outcome: 'no-gain', webp: null })
    await cache.set(fresh, { outcome: 'no-gain', webp: null })
    const tenDaysAgo = new Date(Date.now() - 10 * 24 * 3600 * 1000)
    await utimes(cache.fileOf(old), tenDaysAgo, tenDaysAgo)
    const staleTemp = `${cache.fileOf(fresh)}.123.abc.tmp`
    await writeFile(staleTemp, 'half')
    await utimes(staleTemp, tenDaysAgo, tenDaysAgo)
    const unrelated = path.join(dir, 'README.md')
    await writeFile(unrelated, 'a committed cache may carry a readme')

    expect(await cache.prune(7 * 24 * 3600 * 1000)).toBe(2)
    expect(await cache.get(old)).toBeNull()
    expect(await cache.get(fresh)).toEqual({ outcome: 'no-gain', webp: null })
    expect((await allFiles(dir)).sort()).toEqual([cache.fileOf(fresh), unrelated].sort())
    expect(await new ImageCache(path.join(dir, 'missing')).prune(1)).toBe(0)
  })

  it('prunes at most once per interval, whichever build sharing the directory does it', async () => {
    const cache = new ImageCache(dir)
    const old = cacheKey(sha256('old'), options, 'e')
    const day = 24 * 3600 * 1000
    await cache.set(old, { outcome: 'no-gain', webp: null })
    const longAgo = new Date(Date.now() - 10 * day)
    await utimes(cache.fileOf(old), longAgo, longAgo)
    const now = Date.now()
    expect(await cache.pruneAtMostEvery(day, 7 * day, now)).toBe(1)
    await cache.set(old, { outcome: 'no-gain', webp: null })
    await utimes(cache.fileOf(old), longAgo, longAgo)
    // Another build an hour later: too soon, nothing is walked or removed.
    expect(await new ImageCache(dir).pruneAtMostEvery(day, 7 * day, now + 3600 * 1000)).toBe(0)
    expect(await cache.get(old)).not.toBeNull()
    // A day later it runs again and removes the entry, unused for 10 days again.
    await utimes(cache.fileOf(old), longAgo, longAgo)
    expect(await cache.pruneAtMostEvery(day, 7 * day, now + day + 1)).toBe(1)
  })

  it('a hit refreshes the last-use time of an entry, so pruning goes by use, not by age', async () => {
    const cache = new ImageCache(dir)
    await cache.set(key, { outcome: 'no-gain', webp: null })
    const tenDaysAgo = new Date(Date.now() - 10 * 24 * 3600 * 1000)
    await utimes(cache.fileOf(key), tenDaysAgo, tenDaysAgo)
    expect(await cache.get(key)).not.toBeNull()
    expect(await cache.prune(7 * 24 * 3600 * 1000)).toBe(0)
  })

  it('holds no key material: only hashes, sizes and outcomes', async () => {
    const apiKey = 'K3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3'
    const resolved = resolveOptions({ apiKey, endpoint: 'http://127.0.0.1:9/v1' })
    const cache = new ImageCache(dir)
    const k = cacheKey(sha256('img'), options, backendIdentity(resolved.backend))
    await cache.set(k, { outcome: 'optimized', data: bytes('data'), webp: null })
    await cache.set(key, { outcome: 'unprocessable', reason: 'a reason' })
    for (const file of await allFiles(dir)) {
      expect(await readFile(file, 'latin1')).not.toContain(apiKey)
      expect(file).not.toContain(apiKey)
    }
  })
})
