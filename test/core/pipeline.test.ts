/**
 * The pipeline on its own: a BuildSession fed real images, optimized by the real compatible server on
 * loopback, with a real cache directory.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createMegaOptimServer, type MegaOptimServerHandle } from '../../src/server.ts'
import { cacheKey, ImageCache, sha256 } from '../../src/core/cache.ts'
import { backendIdentity } from '../../src/core/optimizer.ts'
import { resolveOptions, type Options } from '../../src/core/options.ts'
import { BuildError, BuildSession } from '../../src/core/pipeline.ts'
import type { ReportJson } from '../../src/core/report-json.ts'
import type { Logger } from '../../src/core/report.ts'
import type { AssetResult } from '../../src/core/pipeline.ts'
import { bundlerHashes } from '../../src/core/rewrite/content-hash.ts'
import { followingName } from '../../src/core/rewrite/names.ts'

const images = path.resolve('test/fixtures/app/src/images')
const tmpRoot = path.resolve('test/.tmp')
let server: MegaOptimServerHandle
let apiKey: string
let dir: string
let horse: Uint8Array
let rocket: Uint8Array
let badge: Uint8Array

const silent = { logger: { info: () => {}, warn: () => {} }, progress: false }

beforeAll(async () => {
  server = createMegaOptimServer({ rateLimit: 100_000 })
  await server.listen({ host: '127.0.0.1', port: 0 })
  apiKey = (await server.createAccount({ name: 'ci', email: 'ci@example.com', tokens: -1 })).apiKey
  horse = new Uint8Array(await readFile(path.join(images, 'horse.png')))
  rocket = new Uint8Array(await readFile(path.join(images, 'rocket.jpg')))
  badge = new Uint8Array(await readFile(path.join(images, 'badge.svg')))
})
afterAll(async () => {
  await server?.close()
})
beforeEach(async (context) => {
  await mkdir(tmpRoot, { recursive: true })
  dir = await mkdtemp(path.join(tmpRoot, 'pipeline-'))
  context.onTestFinished(() => rm(dir, { recursive: true, force: true }))
})

function session(options: Options = {}, logger: Logger = silent.logger) {
  const resolved = resolveOptions({ apiKey, endpoint: server.endpoint, compression: 'lossless', cache: path.join(dir, 'cache'), ...options })
  return new BuildSession(resolved, { ...silent, logger })
}

describe('BuildSession', () => {
  it('optimizes, reports every field, and writes a JSON report without the key', async () => {
    const s = session({ report: path.join(dir, 'report.json'), webp: true })
    const results = await s.process([
      { fileName: 'assets/horse.png', data: horse },
      { fileName: 'assets/badge.svg', data: badge },
      { fileName: 'main.js', data: new TextEncoder().encode('console.log(1)') },
    ])
    expect(results.map((r) => r.fileName)).toEqual(['assets/horse.png', 'assets/badge.svg'])
    const [png, svg] = results
    expect(png!.changed).toBe(true)
    expect(png!.data.byteLength).toBeLessThan(horse.byteLength)
    expect(png!.webp!.byteLength).toBeLessThan(png!.data.byteLength)
    expect(svg!.changed).toBe(true)
    expect(svg!.webp).toBeNull()
    await s.finish()
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as ReportJson
    expect(Object.keys(report.totals)).toEqual(expect.arrayContaining(['files', 'originalBytes', 'optimizedBytes', 'cacheHits', 'requests', 'tokensUsed', 'tokensLeft']))
    expect(report.version).toBe(1)
    // The account is unlimited: the API says -1, the report says null.
    expect(report.totals.tokensLeft).toBeNull()
    expect(report.totals).toMatchObject({ files: 2, cacheHits: 0, tokensUsed: 1, originalBytes: horse.byteLength + badge.byteLength })
    expect(report.totals.requests).toBeGreaterThan(0)
    for (const file of report.files) {
      expect(Object.keys(file)).toEqual(expect.arrayContaining(['file', 'status', 'originalBytes', 'optimizedBytes', 'cached', 'webpBytes', 'error', 'note']))
    }
    expect(report.files.find((f) => f.file === 'assets/horse.png')).toMatchObject({ status: 'optimized', webpBytes: png!.webp!.byteLength, error: null, cached: false })
    expect(JSON.stringify(report)).not.toContain(apiKey)
  })

  it('passes the output options through: maxWidth resizes, and a different maxWidth is a different cache entry', async () => {
    const { default: sharp } = await import('sharp')
    const original = await sharp(horse).metadata()
    const small = session({ maxWidth: 100 })
    const [r] = await small.process([{ fileName: 'horse.png', data: horse }])
    await small.finish()
    const meta = await sharp(r!.data).metadata()
    expect(meta.width).toBe(100)
    expect(meta.height).toBe(Math.round((original.height! * 100) / original.width!))
    const other = session({ maxWidth: 120 })
    const [again] = await other.process([{ fileName: 'horse.png', data: horse }])
    await other.finish()
    expect(again!.report.cached).toBe(false)
    expect((await sharp(again!.data).metadata()).width).toBe(120)
  })

  it('sends data textures lossless under intelligent: pixel-identical, and keyed as lossless in the cache', async () => {
    const { default: sharp } = await import('sharp')
    const pixels = async (data: Uint8Array) => (await sharp(data).ensureAlpha().raw().toBuffer()).toString('base64')
    const s = session({ compression: 'intelligent' })
    const [map, photo] = await s.process([
      { fileName: 'assets/Horse_normal-DiwrgTda.png', data: horse },
      { fileName: 'assets/horse-DiwrgTda.png', data: horse },
    ])
    await s.finish()
    expect(map!.changed).toBe(true)
    expect(await pixels(map!.data)).toBe(await pixels(horse))
    expect(photo!.changed).toBe(true)
    expect(photo!.data.byteLength).toBeLessThan(map!.data.byteLength)
    expect(await pixels(photo!.data)).not.toBe(await pixels(horse))

    const resolved = resolveOptions({ apiKey, endpoint: server.endpoint })
    const params = { webp: false, keepExif: false, cmykToRgb: true, maxWidth: 0, maxHeight: 0 }
    const cache = new ImageCache(path.join(dir, 'cache'))
    const key = (compression: string) => cacheKey(sha256(horse), { ...params, compression }, backendIdentity(resolved.backend))
    expect(await cache.get(key('lossless'))).toMatchObject({ outcome: 'optimized' })
    expect(await cache.get(key('intelligent'))).toMatchObject({ outcome: 'optimized' })

    // textures: 'as-images' sends the same map lossy, as a different cache entry.
    const asImages = session({ compression: 'intelligent', textures: 'as-images' })
    const [lossy] = await asImages.process([{ fileName: 'assets/Horse_normal-DiwrgTda.png', data: horse }])
    await asImages.finish()
    expect(lossy!.data).toEqual(photo!.data)
  })

  it('skips files below minSize and those excluded; keeps the original below minSavings, without calling it an error', async () => {
    const s = session({ minSize: 2000, exclude: ['**/skip/**'], minSavings: '95%' })
    const results = await s.process([
      { fileName: 'tiny.png', data: horse.subarray(0, 1000) },
      { fileName: 'skip/horse.png', data: horse },
      { fileName: 'horse.png', data: horse },
    ])
    expect(results.map((r) => r.fileName)).toEqual(['horse.png'])
    expect(results[0]).toMatchObject({ changed: false, data: horse })
    expect(results[0]!.report).toMatchObject({ error: null, note: 'saved less than minSavings', optimizedSize: horse.byteLength })
    const report = await s.finish()
    expect(report.totals.files).toBe(1)
  })

  it('tokens left reads the same on a cold and a warm build: the balance the API last gave is remembered', async () => {
    const summaryOf = async () => {
      const lines: string[] = []
      const s = session({}, { info: (m) => void lines.push(m), warn: () => {} })
      await s.process([{ fileName: 'assets/horse.png', data: horse }])
      const report = await s.finish()
      return { text: lines.join('\n'), report }
    }
    const cold = await summaryOf()
    const warm = await summaryOf()
    expect(cold.report.totals.requests).toBeGreaterThan(0)
    expect(warm.report.totals.requests).toBe(0)
    expect(cold.text).toMatch(/tokens left: unlimited$/m)
    expect(warm.text).toMatch(/tokens left: unlimited$/m)
    expect(cold.text).toMatch(/1 image sent to the API \(self-hosted\) in \d+ requests: 1 upload of up to 5 images, \d+ result checks?/)
    expect(warm.text).toMatch(/1 cache hit, no API request \(self-hosted\)/)
  })

  it('caches no-gain outcomes too: the second session sends nothing', async () => {
    const first = session()
    const [r] = await first.process([{ fileName: 'rocket.jpg', data: rocket }])
    expect(r!.changed).toBe(false) // lossless cannot gain 5% on this JPEG
    await first.finish()
    const before = server.stats.totalRequests
    const second = session()
    const [again] = await second.process([{ fileName: 'rocket.jpg', data: rocket }])
    const report = await second.finish()
    expect(server.stats.totalRequests).toBe(before)
    expect(again!.report.cached).toBe(true)
    expect(report.totals).toMatchObject({ requests: 0, cacheHits: 1 })
  })

  it('refetches when the cache entry is corrupt, and never ships the corrupt bytes', async () => {
    const warm = session()
    expect((await warm.process([{ fileName: 'horse.png', data: horse }]))[0]!.changed).toBe(true)
    await warm.finish()
    const cacheDir = path.join(dir, 'cache')
    for (const shard of (await readdir(cacheDir)).filter((name) => /^[0-9a-f]{2}$/.test(name))) {
      for (const name of await readdir(path.join(cacheDir, shard))) {
        const file = path.join(cacheDir, shard, name)
        const raw = await readFile(file)
        raw.writeUInt8(raw.readUInt8(raw.length - 10) ^ 0x55, raw.length - 10)
        await writeFile(file, raw)
      }
    }
    const before = server.stats.requests['POST /v1/optimize'] ?? 0
    const s = session()
    const [r] = await s.process([{ fileName: 'horse.png', data: horse }])
    await s.finish()
    expect((server.stats.requests['POST /v1/optimize'] ?? 0) - before).toBe(1)
    expect(r!.report.cached).toBe(false)
    const { default: sharp } = await import('sharp')
    expect((await sharp(r!.data).metadata()).width).toBe((await sharp(horse).metadata()).width)
  })

  it('verifies before replacing: a result larger, in another format, or cut short is never shipped', async () => {
    const resolved = resolveOptions({ apiKey, endpoint: server.endpoint, compression: 'lossless', cache: path.join(dir, 'cache') })
    const cache = new ImageCache(path.join(dir, 'cache'))
    const fingerprint = { compression: 'lossless', webp: false, keepExif: false, cmykToRgb: true, maxWidth: 0, maxHeight: 0 }
    const identity = backendIdentity(resolved.backend)
    // Entries that pass the cache's own hash checks but must still be refused by the pipeline.
    const larger = new Uint8Array(horse.byteLength + 10)
    larger.set(horse)
    await cache.set(cacheKey(sha256(horse), fingerprint, identity), { outcome: 'optimized', data: larger, webp: null })
    await cache.set(cacheKey(sha256(rocket), fingerprint, identity), { outcome: 'optimized', data: horse.subarray(0, 100), webp: null })
    // Same format, smaller, but cut short: a PNG with its header and no IEND.
    const palette = new Uint8Array(await readFile(path.join(images, 'palette.png')))
    await cache.set(cacheKey(sha256(palette), fingerprint, identity), { outcome: 'optimized', data: palette.subarray(0, palette.byteLength >> 1), webp: null })
    const warnings: string[] = []
    const s = new BuildSession(resolved, { progress: false, logger: { info: () => {}, warn: (m) => void warnings.push(m) } })
    const results = await s.process([
      { fileName: 'horse.png', data: horse },
      { fileName: 'rocket.jpg', data: rocket },
      { fileName: 'palette.png', data: palette },
    ])
    expect(results).toHaveLength(3)
    for (const r of results) expect(r.changed).toBe(false)
    expect(results[0]!.report.error).toBe('the optimized result was not smaller than the original')
    expect(results[1]!.report.error).toMatch(/^the optimized result was unusable \(not a JPEG/)
    expect(results[2]!.report.error).toMatch(/^the optimized result was unusable \(truncated: the PNG has no IEND chunk/)
    expect(results[2]!.data).toBe(palette)
    await s.finish()
    expect(warnings.join('\n')).toMatch(/horse\.png: the optimized result was not smaller/)
  })

  it('names a truncated file and keeps it without sending it; failOnError makes finish() throw', async () => {
    const truncated = new Uint8Array(await readFile(path.resolve('test/fixtures/images/truncated.jpg')))
    const before = server.stats.totalRequests
    const s = session({ failOnError: true })
    const [r] = await s.process([{ fileName: 'assets/truncated.jpg', data: truncated }])
    expect(server.stats.totalRequests).toBe(before)
    expect(r).toMatchObject({ changed: false, data: truncated })
    expect(r!.report.error).toMatch(/^truncated: the JPEG ends before its end-of-image marker/)
    const error = await s.finish().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BuildError)
    expect((error as Error).message).toMatch(/assets\/truncated\.jpg: truncated/)
    expect((error as Error).message).toMatch(/failOnError is on/)
  })

  it('an unreachable API keeps every original with the reason, and the key stays out of it', async () => {
    const warnings: string[] = []
    const resolved = resolveOptions({ apiKey, endpoint: 'http://127.0.0.1:9/v1', cache: false })
    const s = new BuildSession(resolved, { progress: false, logger: { info: () => {}, warn: (m) => void warnings.push(m) } })
    const [r] = await s.process([{ fileName: 'horse.png', data: horse }])
    await s.finish()
    expect(r).toMatchObject({ changed: false, data: horse })
    expect(r!.report.error).toMatch(/ECONNREFUSED|network/i)
    expect(warnings.join('\n')).toMatch(/1 of 1 images kept their original bytes/)
    expect(warnings.join('\n')).not.toContain(apiKey)
  }, 60_000)

  it('embedded: cache keys carry the engine version the server reports, and another engine means a miss', async () => {
    const resolved = resolveOptions({ compression: 'lossless', cache: path.join(dir, 'cache') }, { env: {} })
    expect(resolved.backend.kind).toBe('embedded')
    const run = async () => {
      const s = new BuildSession(resolved, silent)
      const [r] = await s.process([{ fileName: 'horse.png', data: horse }])
      await s.finish()
      return r!
    }
    const note = path.join(dir, 'cache', 'embedded-engine.json')
    expect((await run()).report.cached).toBe(false)
    const seen = JSON.parse(await readFile(note, 'utf8')) as { engine: string }
    expect(seen.engine).toMatch(/\S/)
    expect((await run()).report.cached).toBe(true)

    await writeFile(note, JSON.stringify({ engine: 'an-older-engine/0' }))
    const afterUpgrade = await run()
    expect(afterUpgrade.report.cached).toBe(false)
    expect(afterUpgrade.changed).toBe(true)
    expect(JSON.parse(await readFile(note, 'utf8'))).toMatchObject({ engine: seen.engine })
    expect((await run()).report.cached).toBe(true)
  })
})

describe('digests for names that follow the bytes', () => {
  it('a result carries the SHA-256 of its bytes, from the cache too, and the builds of one process note every digest either made', async () => {
    const [first, second] = [session(), session()]
    const [fresh] = await first.process([{ fileName: 'assets/horse.png', data: horse }])
    const [hit] = await second.process([{ fileName: 'assets/horse.png', data: horse }])
    expect(fresh!.changed).toBe(true)
    expect(fresh!.sha256).toEqual({ before: sha256(horse), after: sha256(fresh!.data) })
    expect(hit!.report.cached).toBe(true)
    expect(hit!.sha256).toEqual(fresh!.sha256)
    // Both builds rename (Vite's client and SSR environments do, in one process), each a different image.
    const rename = async (build: BuildSession, result: AssetResult, original: Uint8Array) => {
      const name = `assets/x-${(await bundlerHashes(original)).base64.slice(0, 8)}.png`
      expect(await followingName(name, original, result.data, await build.knownDigests(result))).not.toBeNull()
    }
    const palette = new Uint8Array(await readFile(path.join(images, 'palette.png')))
    const other = (await second.process([{ fileName: 'assets/palette.png', data: palette }]))[0]!
    expect(other.changed).toBe(true)
    await rename(first, fresh!, horse)
    await rename(second, other, palette)
    await first.finish()
    await second.finish()
    const note = JSON.parse(await readFile(path.join(dir, 'cache', 'name-digests.json'), 'utf8')) as Record<string, string>
    const shas = [fresh!.sha256, other.sha256].flatMap(({ before, after }) => [before, after!])
    expect(Object.keys(note).sort()).toEqual(shas.map((sha) => `xxh128:${sha}`).sort())
  })
})

describe('the JSON report across builds', () => {
  it('a later build that met no image (an SSR build) does not blank the report; an empty first build writes one', async () => {
    const reportPath = path.join(dir, 'report.json')
    const options = { report: reportPath, cache: false as const }
    const empty = session(options)
    await empty.process([{ fileName: 'main.js', data: new TextEncoder().encode('1') }])
    await empty.finish()
    expect(JSON.parse(await readFile(reportPath, 'utf8'))).toMatchObject({ totals: { files: 0 } })

    const client = session(options)
    await client.process([{ fileName: 'assets/badge.svg', data: badge }])
    await client.finish()
    const ssr = session(options)
    await ssr.process([])
    await ssr.finish()
    expect(JSON.parse(await readFile(reportPath, 'utf8'))).toMatchObject({ totals: { files: 1 } })
  })
})
