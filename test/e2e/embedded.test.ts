/**
 * The default with no API key: the embedded server starts in-process on the first cache miss, says so in
 * one line, and a rebuild served from the cache neither starts it nor loads sharp. Each build runs in a
 * fresh process, as `vite build` would, so what it loads can be checked.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { ReportJson } from '../../src/core/report-json.ts'
import { startApiServer } from './api-server.ts'
import { checkImages, cleanTmp, prepareApp } from './harness.ts'

const child = fileURLToPath(new URL('./child-build.ts', import.meta.url))

async function buildInChild(bundler: string, root: string, options: Record<string, unknown>) {
  const env = { ...process.env }
  delete env.MEGAOPTIM_API_KEY
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', child, JSON.stringify({ bundler, root, options })], {
    env,
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { infos: string[]; warnings: string[]; sharpLoaded: boolean; serverLoaded: boolean; loaded: string[]; collations: number }
}

/**
 * What only a miss needs: what optimizes (the client proper, the server, the engine, sharp, svgo, p-queue),
 * the WebP rewriters of HTML and CSS with their parsers (this build makes no WebP), hash-wasm (a rebuild
 * takes the digests its renames need from the cache's note), and image-size (the pixels of an image sent,
 * to order the misses). A warm build pays for loading each of them.
 */
const MISS_ONLY = [
  /[\\/]src[\\/](client[\\/]client\.ts|server[\\/]|engine[\\/])/,
  /[\\/]src[\\/]core[\\/]rewrite[\\/](html|css)\.ts$/,
  /[\\/]node_modules[\\/](sharp|fastify|undici|svgo|p-queue|parse5|srcset|postcss-value-parser|image-size)[\\/]/,
  /[\\/]node_modules[\\/]hash-wasm[\\/]/,
]
const missOnly = (loaded: string[]) => loaded.filter((file) => MISS_ONLY.some((pattern) => pattern.test(file)))

describe('no API key: the embedded default', () => {
  afterAll(() => cleanTmp(['embedded-', 'hosted-']))

  it('starts the embedded server on a miss, announces it once, and a cached rebuild loads neither it, sharp, nor anything else only a miss needs', async () => {
    const root = await prepareApp('embedded')
    const options = { compression: 'lossless', cache: '.cache/megaoptim', report: 'report.json' }
    const first = await buildInChild('vite', root, options)
    const announced = first.infos.filter((line) => /embedded engine/.test(line))
    expect(announced).toHaveLength(1)
    expect(announced[0]).toMatch(/\[megaoptim\] no API key: optimizing with the embedded engine at http:\/\/127\.0\.0\.1:\d+\/v1/)
    // Positive controls: the detection below does see the server and sharp when they are there.
    expect(first.sharpLoaded).toBe(true)
    expect(first.serverLoaded).toBe(true)
    // ...and does see ES modules (p-queue, svgo) as well as CommonJS ones.
    for (const name of ['p-queue', 'svgo', 'fastify', 'image-size', 'hash-wasm', 'src/client/client.ts']) {
      expect(missOnly(first.loaded).some((file) => file.split(path.sep).join('/').includes(name)), name).toBe(true)
    }
    const cold = JSON.parse(await readFile(path.join(root, 'report.json'), 'utf8')) as ReportJson
    expect(cold.backend).toBe('embedded')
    expect(cold.totals.requests).toBeGreaterThan(0)
    expect(cold.totals.optimizedBytes).toBeLessThan(cold.totals.originalBytes)
    await checkImages(root, path.join(root, 'dist'))

    const second = await buildInChild('vite', root, options)
    expect(second.infos.some((line) => /embedded engine/.test(line))).toBe(false)
    expect(second.sharpLoaded).toBe(false)
    expect(second.serverLoaded).toBe(false)
    expect(missOnly(second.loaded)).toEqual([])
    // Nor does it start ICU's collator (the report's order is by code unit).
    expect(second.collations).toBe(0)
    const warm = JSON.parse(await readFile(path.join(root, 'report.json'), 'utf8')) as ReportJson
    expect(warm.totals).toMatchObject({ requests: 0, tokensUsed: 0, cacheHits: cold.totals.files, optimizedBytes: cold.totals.optimizedBytes })
    // The names that follow the bytes, made from the digests the first build noted, are the ones it made.
    expect(cold.references?.renamed).toBeGreaterThan(0)
    expect(warm.references).toEqual(cold.references)
    expect(warm.files.map((f) => f.file)).toEqual(cold.files.map((f) => f.file))
  })

  it('with a key, a build optimizes over HTTP without ever loading sharp or the server in its own process', async () => {
    const { server, apiKey } = await startApiServer()
    try {
      const root = await prepareApp('hosted')
      const result = await buildInChild('esbuild', root, { apiKey, endpoint: server.endpoint, compression: 'lossless', cache: false, report: 'report.json' })
      expect(result.sharpLoaded).toBe(false)
      expect(result.serverLoaded).toBe(false)
      expect(result.infos.some((line) => /embedded/.test(line))).toBe(false)
      const report = JSON.parse(await readFile(path.join(root, 'report.json'), 'utf8')) as ReportJson
      expect(report.backend).toBe('self-hosted')
      expect(report.totals.requests).toBeGreaterThan(0)
      expect(report.totals.optimizedBytes).toBeLessThan(report.totals.originalBytes)
      expect(server.stats.requests['POST /v1/optimize']).toBeGreaterThan(0)
    } finally {
      await server.close()
    }
  })
})
