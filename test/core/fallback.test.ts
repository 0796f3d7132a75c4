/**
 * `fallback: 'embedded'`: when the API is out of tokens (or down), the embedded engine optimizes the
 * images instead, and its results are cached under its own identity, never taken for the API's work.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { createMegaOptimServer, type MegaOptimServerHandle } from '../../src/server.ts'
import { cacheKey, ImageCache, sha256 } from '../../src/core/cache.ts'
import { backendIdentity } from '../../src/core/optimizer.ts'
import { resolveOptions, type Options } from '../../src/core/options.ts'
import { BuildSession } from '../../src/core/pipeline.ts'
import { unpluginFactory } from '../../src/core/plugin.ts'

const images = path.resolve('test/fixtures/app/src/images')
const tmpRoot = path.resolve('test/.tmp')
let server: MegaOptimServerHandle
let broke: string
let rich: string
let dir: string
let horse: Uint8Array

beforeAll(async () => {
  server = createMegaOptimServer({ rateLimit: 100_000 })
  await server.listen({ host: '127.0.0.1', port: 0 })
  broke = (await server.createAccount({ name: 'broke', email: 'broke@example.com', tokens: 0 })).apiKey
  rich = (await server.createAccount({ name: 'rich', email: 'rich@example.com', tokens: -1 })).apiKey
  horse = new Uint8Array(await readFile(path.join(images, 'horse.png')))
})
afterAll(async () => {
  await server?.close()
})
beforeEach(async (context) => {
  await mkdir(tmpRoot, { recursive: true })
  dir = await mkdtemp(path.join(tmpRoot, 'fallback-'))
  context.onTestFinished(() => rm(dir, { recursive: true, force: true }))
})

async function build(options: Options) {
  const warnings: string[] = []
  const resolved = resolveOptions({ endpoint: server.endpoint, compression: 'lossless', cache: path.join(dir, 'cache'), ...options }, { env: {} })
  const session = new BuildSession(resolved, { progress: false, logger: { info: () => {}, warn: (m) => void warnings.push(m) } })
  const [result] = await session.process([{ fileName: 'assets/horse.png', data: horse }])
  const report = await session.finish()
  return { result: result!, report, warnings: warnings.join('\n') }
}

describe("fallback: 'embedded'", () => {
  it('an API out of tokens: the embedded engine optimizes instead, and says so', async () => {
    const { result, report, warnings } = await build({ apiKey: broke, fallback: 'embedded' })
    expect(result.changed).toBe(true)
    expect(result.data.byteLength).toBeLessThan(horse.byteLength)
    expect(result.report.error).toBeNull()
    expect(warnings).toMatch(/the API could not be used \(.*tokens.*\); 1 image goes to the embedded engine instead \(fallback: 'embedded'\)/i)
    expect(warnings).not.toContain(broke)
    expect(report.totals.tokensUsed).toBe(0)

    // Cached under the engine's identity, not the API's.
    const cache = new ImageCache(path.join(dir, 'cache'))
    const fingerprint = { compression: 'lossless', webp: false, keepExif: false, cmykToRgb: true, maxWidth: 0, maxHeight: 0 }
    const apiIdentity = backendIdentity(resolveOptions({ apiKey: broke, endpoint: server.endpoint }).backend)
    expect(await cache.get(cacheKey(sha256(horse), fingerprint, apiIdentity))).toBeNull()
    const note = JSON.parse(await readFile(path.join(dir, 'cache', 'embedded-engine.json'), 'utf8')) as { engine: string }
    const engineEntry = await cache.get(cacheKey(sha256(horse), fingerprint, backendIdentity({ kind: 'embedded' }, note.engine)))
    expect(engineEntry).toMatchObject({ outcome: 'optimized' })

    // A build while the API is still out of tokens reuses the engine's result without running it again.
    const again = await build({ apiKey: broke, fallback: 'embedded' })
    expect(again.result).toMatchObject({ changed: true, report: { cached: true } })
  })

  it('once the API works again, the next build asks it: the fallback result is not taken for its work', async () => {
    await build({ apiKey: broke, fallback: 'embedded' })
    const before = server.stats.requests['POST /v1/optimize'] ?? 0
    const { result } = await build({ apiKey: rich, fallback: 'embedded' })
    expect(result.report.cached).toBe(false)
    expect(result.changed).toBe(true)
    expect((server.stats.requests['POST /v1/optimize'] ?? 0) - before).toBeGreaterThan(0)
  })

  it('an API that cannot be reached: the embedded engine optimizes instead', async () => {
    const { result, warnings } = await build({ apiKey: rich, endpoint: 'http://127.0.0.1:9/v1', fallback: 'embedded' })
    expect(result).toMatchObject({ changed: true, report: { error: null } })
    expect(warnings).toMatch(/the API could not be used \(.*(ECONNREFUSED|connect|network).*\); 1 image goes to the embedded engine/i)
  }, 120_000)

  it('without it, an API out of tokens keeps the original and names the reason', async () => {
    const { result } = await build({ apiKey: broke })
    expect(result).toMatchObject({ changed: false, data: horse })
    expect(result.report.error).toMatch(/token/i)
    expect(existsSync(path.join(dir, 'cache', 'embedded-engine.json'))).toBe(false)
  })
})

describe('enabled: false', () => {
  it('gives the bundlers a plugin with no hook at all', () => {
    const plugin = unpluginFactory({ enabled: false, webp: true }, { framework: 'vite' } as never)
    expect(plugin).toEqual({ name: 'unplugin-megaoptim' })
  })
})
