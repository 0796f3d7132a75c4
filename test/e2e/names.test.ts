/**
 * Names that follow the bytes, for every bundler: the build with the plugin against the plain build of
 * the same app. A changed image gets a new name (for Rollup, Rolldown and Vite: the bundler's own hash
 * of the bytes that ship; for esbuild: esbuild's), an unchanged one keeps its name, every reference in the
 * emitted JS, CSS, HTML and Vite's manifests still resolves, and the emitted HTML and CSS offer the WebP
 * siblings. The output tree is snapshotted by name; webpack and Rspack rename through realContentHash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import { bundlerHashes } from '../../src/core/rewrite/content-hash.ts'
import type { BuildReport } from '../../src/core/report.ts'
import { startApiServer } from './api-server.ts'
import { BUNDLERS, buildWith, checkReferences, cleanTmp, fileTree, prepareApp, withoutHashes, type BundlerName } from './harness.ts'

let server: MegaOptimServerHandle
let apiKey: string

beforeAll(async () => {
  ({ server, apiKey } = await startApiServer())
})
afterAll(async () => {
  await server?.close()
  await cleanTmp(['names-'])
})

const IMAGE = /\.(png|jpe?g|gif|svg)$/
/** `assets/horse-Ab12Cd34.png` -> `horse.png`: what an image is, whatever its hash. */
const identity = (file: string) => path.posix.basename(file).replace(/-[A-Za-z0-9_-]{8}(?=\.)/, '')
/** The hash in a name, as every bundler here is configured: 8 characters after the last dash. */
const hashIn = (file: string) => /-([A-Za-z0-9_-]{8})\.[a-z]+$/.exec(file)?.[1]

async function build(bundler: BundlerName, label: string, plain: boolean) {
  const root = await prepareApp(`names-${bundler}-${label}`)
  const extras = { html: bundler === 'webpack' || bundler === 'rspack', manifests: bundler === 'vite', plain }
  const options = { apiKey, endpoint: server.endpoint, compression: 'lossless' as const, webp: true, cache: false as const, report: path.join(root, 'report.json') }
  const out = await buildWith(bundler, root, options, 'dist', [], extras)
  return { root, outDir: out.outDir, tree: await fileTree(out.outDir) }
}

describe.each(BUNDLERS)('%s: names follow the bytes', (bundler) => {
  it('renames what changed, keeps what did not, and every reference resolves', async () => {
    const plain = await build(bundler, 'plain', true)
    const built = await build(bundler, 'plugin', false)
    expect(withoutHashes(built.tree)).toMatchSnapshot('output tree')

    const plainByIdentity = new Map(plain.tree.filter((f) => IMAGE.test(f)).map((f) => [identity(f), f]))
    const renamed: string[] = []
    for (const file of built.tree.filter((f) => IMAGE.test(f) && f.startsWith('assets/'))) {
      const before = plainByIdentity.get(identity(file))!
      expect(before, file).toBeDefined()
      const bytes = await readFile(path.join(built.outDir, file))
      const changed = !bytes.equals(await readFile(path.join(plain.outDir, before)))
      if (!changed) {
        expect(file).toBe(before)
        continue
      }
      expect(file, `${file} changed bytes, so its name changes`).not.toBe(before)
      renamed.push(identity(file))
      const hashes = await bundlerHashes(new Uint8Array(bytes))
      if (bundler === 'vite' || bundler === 'rollup' || bundler === 'rolldown') expect(hashIn(file)).toBe(hashes.base64.slice(0, 8))
      if (bundler === 'esbuild') expect(hashIn(file)).toBe(hashes.base32.slice(0, 8))
    }
    expect(renamed).toEqual(expect.arrayContaining(['horse.png', 'palette.png', 'badge.svg']))

    const refs = await checkReferences(built.outDir)
    expect(refs.missing).toEqual([])
    // The CSS background's sibling is named from CSS (and, with an HTML page, the horse's from HTML).
    expect(refs.fromCss.some((r) => r.startsWith('palette') && r.endsWith('.png.webp'))).toBe(true)

    const report = JSON.parse(await readFile(path.join(built.root, 'report.json'), 'utf8')) as BuildReport
    expect(report.references?.renamed).toBe(renamed.length)
    expect(report.references!.rewritten).toBeGreaterThan(0)
    // The report names the files that ship.
    for (const row of report.files) expect(built.tree).toContain(row.file)

    const css = built.tree.find((f) => f.endsWith('.css'))!
    expect(await readFile(path.join(built.outDir, css), 'utf8')).toMatch(/image-set\(url\("[^"]*palette-[^"]+\.png\.webp"\) type\("image\/webp"\), url\("[^"]*palette-[^"]+\.png"\) type\("image\/png"\)\)/)

    if (bundler === 'vite' || bundler === 'webpack' || bundler === 'rspack') {
      const html = await readFile(path.join(built.outDir, 'index.html'), 'utf8')
      const expected = bundler === 'vite' ? '/img/green.png' : built.tree.find((f) => /^assets\/horse-.*\.png$/.test(f))!
      expect(html).toContain(`<picture><source type="image/webp" srcset="${expected}.webp">`)
      expect(html).toMatch(/<\/picture>/)
    }

    if (bundler === 'vite') {
      // Both manifests name only files that exist, the renamed images among them.
      const manifest = JSON.parse(await readFile(path.join(built.outDir, '.vite/manifest.json'), 'utf8')) as Record<string, { file: string; assets?: string[] }>
      const named = Object.values(manifest).flatMap((m) => [m.file, ...(m.assets ?? [])])
      const ssr = JSON.parse(await readFile(path.join(built.outDir, '.vite/ssr-manifest.json'), 'utf8')) as Record<string, string[]>
      const ssrNamed = Object.values(ssr).flat().map((url) => url.replace(/^\//, ''))
      for (const file of [...named, ...ssrNamed]) expect(built.tree, file).toContain(file)
      const horse = built.tree.find((f) => /^assets\/horse-.*\.png$/.test(f))!
      expect(manifest['src/images/horse.png']?.file).toBe(horse)
      expect(ssrNamed).toContain(horse)
      // public/ files keep their names.
      expect(built.tree).toEqual(expect.arrayContaining(['img/green.png', 'img/green.png.webp', 'img/mark.svg']))
    }
  })
})
