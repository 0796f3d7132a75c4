/**
 * Where the plugin must stay out of the way or adapt: esbuild's in-memory builds (`write: false`),
 * webpack's development mode, and Vite's dev server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import * as esbuild from 'esbuild'
import webpack from 'webpack'
import { build } from 'vite'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import { startApiServer } from './api-server.ts'
import megaoptimEsbuild from '../../src/esbuild.ts'
import megaoptimVite from '../../src/vite.ts'
import megaoptimWebpack from '../../src/webpack.ts'
import { cleanTmp, fileTree, prepareApp } from './harness.ts'

let server: MegaOptimServerHandle
let apiKey: string

beforeAll(async () => {
  ({ server, apiKey } = await startApiServer())
})
afterAll(async () => {
  await server?.close()
  await cleanTmp(['modes-'])
})

describe('build modes', () => {
  it('esbuild write: false: the in-memory output files are swapped for optimized ones, WebP appended, nothing written', async () => {
    const root = await prepareApp('modes-esbuild')
    const outdir = path.join(root, 'dist')
    const result = await esbuild.build({
      entryPoints: [path.join(root, 'src/main.js')],
      bundle: true,
      outdir,
      write: false,
      assetNames: 'assets/[name]-[hash]',
      loader: { '.png': 'file', '.jpg': 'file', '.gif': 'file', '.svg': 'file' },
      logLevel: 'silent',
      plugins: [megaoptimEsbuild({ apiKey, endpoint: server.endpoint, compression: 'lossless', webp: true, cache: false, logLevel: 'warn' })],
    })
    expect(existsSync(outdir)).toBe(false)
    const byName = new Map(result.outputFiles!.map((f) => [path.relative(outdir, f.path).split(path.sep).join('/'), f]))
    const horse = [...byName.keys()].find((n) => /^assets\/horse-\w+\.png$/.test(n))!
    const original = await readFile(path.join(root, 'src/images/horse.png'))
    expect(byName.get(horse)!.contents.byteLength).toBeLessThan(original.byteLength)
    const { default: sharp } = await import('sharp')
    expect((await sharp(byName.get(horse)!.contents).metadata()).width).toBe((await sharp(original).metadata()).width)
    expect(byName.get(horse)!.hash).toMatch(/^[0-9a-f]{16}$/)
    const webp = byName.get(`${horse}.webp`)
    expect(webp).toBeDefined()
    expect((await sharp(webp!.contents).metadata()).format).toBe('webp')
    // The JS still names the image, which is still among the outputs.
    expect(byName.get('main.js')!.text).toContain(path.posix.basename(horse))
  })

  it('webpack in development mode is left alone: no request, every image byte-identical', async () => {
    const root = await prepareApp('modes-webpack')
    const before = server.stats.totalRequests
    const compiler = webpack({
      mode: 'development',
      context: root,
      entry: './src/main.js',
      devtool: false,
      output: { path: path.join(root, 'dist'), assetModuleFilename: 'assets/[name][ext]' },
      experiments: { css: true },
      module: { rules: [{ test: /\.(png|jpe?g|gif|svg)$/i, type: 'asset/resource' }] },
      plugins: [megaoptimWebpack({ apiKey, endpoint: server.endpoint, cache: false })],
      infrastructureLogging: { level: 'error' },
    })
    await new Promise<void>((resolve, reject) => compiler.run((err, stats) => compiler.close(() => (err || stats?.hasErrors() ? reject(err ?? new Error(stats!.toString())) : resolve()))))
    expect(server.stats.totalRequests).toBe(before)
    const tree = await fileTree(path.join(root, 'dist'))
    for (const name of ['horse.png', 'rocket.jpg', 'no_time_for_that_tiny.gif', 'palette.png', 'badge.svg']) {
      expect(tree).toContain(`assets/${name}`)
      const emitted = await readFile(path.join(root, 'dist/assets', name))
      expect(emitted.equals(await readFile(path.join(root, 'src/images', name))), name).toBe(true)
    }
  })

  it('Vite: applies to builds only, never to the dev server', () => {
    const plugin = megaoptimVite({ apiKey, endpoint: server.endpoint })
    expect(plugin).toMatchObject({ name: 'unplugin-megaoptim', apply: 'build', enforce: 'post' })
  })

  it('a bad option fails when the plugin is created, naming the option, the value and what is allowed', () => {
    expect(() => megaoptimVite({ maxWidth: 'abc' as never })).toThrow('[megaoptim] maxWidth must be a whole number from 0 (off) to 999999, got "abc"')
    expect(() => megaoptimWebpack({ compression: 'max' as never })).toThrow(/compression must be "intelligent", "ultra" or "lossless", got "max"/)
  })

  it('Vite: a build failing after the images were optimized still reports and stops the embedded server', async () => {
    const root = await prepareApp('modes-vite-fail')
    const listening = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length
    const before = listening()
    const saved = process.env.MEGAOPTIM_API_KEY
    delete process.env.MEGAOPTIM_API_KEY
    let during = 0
    try {
      await expect(
        build({
          root,
          configFile: false,
          logLevel: 'silent',
          build: { outDir: path.join(root, 'dist'), assetsInlineLimit: 0 },
          plugins: [
            megaoptimVite({ compression: 'lossless', cache: false, report: path.join(root, 'report.json') }),
            // Runs before the plugin's own writeBundle (which is `enforce: 'post'`), so that one never runs.
            { name: 'fails-late', writeBundle() { during = listening(); throw new Error('a later plugin failed') } },
          ],
        }),
      ).rejects.toThrow(/a later plugin failed/)
    } finally {
      if (saved !== undefined) process.env.MEGAOPTIM_API_KEY = saved
    }
    expect(during).toBe(before + 1) // the embedded server was up while the build ran
    expect(listening()).toBe(before)
    const report = JSON.parse(await readFile(path.join(root, 'report.json'), 'utf8')) as { totals: { files: number } }
    expect(report.totals.files).toBeGreaterThan(0)
  })

  it('CommonJS configs can call require(entry)(options), as in webpack.config.js', async () => {
    const { execFileSync } = await import('node:child_process')
    const script = ['webpack', 'rspack', 'vite', 'rollup', 'rolldown', 'esbuild']
      .map((b) => `typeof require(${JSON.stringify(path.resolve(`src/${b}.ts`))})({ cache: false })`)
      .join(' + "," + ')
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', `console.log(${script})`], { encoding: 'utf8' })
    expect(out.trim()).toBe('object,object,object,object,object,object')
  })
})
