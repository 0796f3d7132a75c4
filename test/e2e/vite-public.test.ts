/**
 * Vite's public/ images are optimized from the sources while the bundle's are (so both share the
 * server's workers), then put on Vite's copies: what ships is always derived from what Vite wrote.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Plugin } from 'vite'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import type { ReportJson } from '../../src/core/report-json.ts'
import megaoptim from '../../src/vite.ts'
import { startApiServer } from './api-server.ts'
import { cleanTmp, FIXTURE, prepareApp } from './harness.ts'

let server: MegaOptimServerHandle
let apiKey: string

beforeAll(async () => {
  ;({ server, apiKey } = await startApiServer())
})
afterAll(async () => {
  await server?.close()
  await cleanTmp(['vite-public-'])
})

async function build(root: string, plugins: Plugin[]): Promise<ReportJson> {
  const { build: viteBuild } = await import('vite')
  const report = path.join(root, 'report.json')
  await viteBuild({
    root,
    configFile: false,
    logLevel: 'silent',
    build: { outDir: path.join(root, 'dist'), emptyOutDir: true, assetsInlineLimit: 0 },
    plugins: [...plugins, megaoptim({ apiKey, endpoint: server.endpoint, compression: 'lossless', cache: false, report, logLevel: 'warn' })],
  })
  return JSON.parse(await readFile(report, 'utf8')) as ReportJson
}

describe('Vite public/ images', () => {
  it('are optimized in the output and reported once each; the sources are untouched', async () => {
    const root = await prepareApp('vite-public-plain')
    const report = await build(root, [])
    const green = report.files.filter((f) => f.file === 'img/green.png')
    expect(green).toHaveLength(1)
    expect(green[0]!.optimizedBytes).toBeLessThan(green[0]!.originalBytes)
    expect((await readFile(path.join(root, 'dist/img/green.png'))).byteLength).toBe(green[0]!.optimizedBytes)
    expect((await readFile(path.join(root, 'public/img/green.png'))).equals(await readFile(path.join(FIXTURE, 'public/img/green.png')))).toBe(true)
  })

  it('a copy another plugin rewrote after Vite copied it is optimized as it was written, not from the source', async () => {
    const root = await prepareApp('vite-public-rewritten')
    const horse = await readFile(path.join(FIXTURE, 'src/images/horse.png'))
    const rewriter: Plugin = {
      name: 'rewrite-public-copy',
      async writeBundle(options) {
        await writeFile(path.join(options.dir!, 'img/green.png'), horse)
      },
    }
    const report = await build(root, [rewriter])
    const green = report.files.filter((f) => f.file === 'img/green.png')
    expect(green).toHaveLength(1)
    expect(green[0]!.originalBytes).toBe(horse.byteLength)
    const shipped = await readFile(path.join(root, 'dist/img/green.png'))
    expect(shipped.byteLength).toBe(green[0]!.optimizedBytes)
    expect(shipped.byteLength).toBeLessThan(horse.byteLength)
    const { default: sharp } = await import('sharp')
    const [a, b] = await Promise.all([sharp(horse).raw().toBuffer(), sharp(shipped).raw().toBuffer()])
    expect(b.equals(a)).toBe(true)
  })
})
