/**
 * Several builds in one process (SSR + client, several outputs) meet the same image bytes: they are sent
 * once. Counted at the server, with the cache off so only the in-flight sharing can explain it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import path from 'node:path'
import { rollup } from 'rollup'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import { startApiServer } from './api-server.ts'
import megaoptim from '../../src/rollup.ts'
import { fixtureAssets } from './fixture-assets.ts'
import { checkImages, cleanTmp, prepareApp } from './harness.ts'

describe('identical bytes across concurrent builds', () => {
  let server: MegaOptimServerHandle
  let apiKey: string

  beforeAll(async () => {
    ({ server, apiKey } = await startApiServer())
  })
  afterAll(async () => {
    await server?.close()
    await cleanTmp(['dedupe-'])
  })

  async function writeOutputs(root: string, dirs: string[]): Promise<number> {
    const before = server.stats.requests['POST /v1/optimize'] ?? 0
    const bundle = await rollup({
      input: path.join(root, 'src/main.js'),
      plugins: [fixtureAssets(), megaoptim({ apiKey, endpoint: server.endpoint, compression: 'lossless', cache: false, logLevel: 'warn' })],
    })
    try {
      await Promise.all(dirs.map((dir) => bundle.write({ dir: path.join(root, dir), format: dir.endsWith('cjs') ? 'cjs' : 'es', assetFileNames: 'assets/[name]-[hash][extname]' })))
    } finally {
      await bundle.close()
    }
    return (server.stats.requests['POST /v1/optimize'] ?? 0) - before
  }

  it('two outputs written at once send each image once, and both ship the optimized bytes', async () => {
    const root = await prepareApp('dedupe')
    const single = await writeOutputs(root, ['one'])
    expect(single).toBeGreaterThan(0)
    const double = await writeOutputs(root, ['two-es', 'two-cjs'])
    expect(double).toBe(single)
    for (const dir of ['one', 'two-es', 'two-cjs']) {
      const checks = await checkImages(root, path.join(root, dir))
      expect(checks.find((c) => c.source.endsWith('horse.png'))!.after).toBeLessThan(checks.find((c) => c.source.endsWith('horse.png'))!.before)
    }
  })
})
