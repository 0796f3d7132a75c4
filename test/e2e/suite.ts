/**
 * The end-to-end suite every bundler runs: a real build of the fixture app with the plugin, against the
 * real compatible server on loopback (port 0), with real images.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import { startApiServer } from './api-server.ts'
import type { ReportJson } from '../../src/core/report-json.ts'
import { FIXTURE, buildWith, checkImages, cleanTmp, checkReferences, fileTree, prepareApp, SOURCE_IMAGES, withoutHashes, type BundlerName } from './harness.ts'

/** Emitted images that are markup, optimized locally with svgo (never sent, so never failed by the API). */
const isSvg = (file: string) => file.endsWith('.svg')

export function bundlerSuite(bundler: BundlerName): void {
  describe(`${bundler}: end to end`, () => {
    let server: MegaOptimServerHandle
    let endpoint: string
    let apiKey: string
    let emptyKey: string

    beforeAll(async () => {
      ({ server, apiKey } = await startApiServer())
      endpoint = server.endpoint
      emptyKey = (await server.createAccount({ name: 'broke', email: 'broke@example.com', tokens: 0 })).apiKey
    })
    afterAll(async () => {
      await server?.close()
    })

    const readReport = async (root: string): Promise<ReportJson> => JSON.parse(await readFile(path.join(root, 'report.json'), 'utf8')) as ReportJson

    /** Output images byte-identical to their sources, by output path. */
    async function untouched(root: string, outDir: string): Promise<string[]> {
      const same: string[] = []
      for (const check of await checkImages(root, outDir)) {
        const a = await readFile(path.join(outDir, check.file))
        const b = await readFile(path.join(root, check.source))
        if (a.equals(b)) same.push(check.file)
      }
      return same
    }

    it('optimizes images from JS, CSS (and public/), keeps them valid, emits WebP siblings, then rebuilds with zero requests', async () => {
      const root = await prepareApp(`${bundler}-main`)
      const options = { apiKey, endpoint, compression: 'lossless' as const, webp: true, cache: '.cache/megaoptim', report: 'report.json' }
      // Relative cache and report paths follow the working directory (Vite: its root), so build from the app.
      const cwd = process.cwd()
      process.chdir(root)
      try {
        const first = await buildWith(bundler, root, options)
        const tree = await fileTree(first.outDir)
        expect(withoutHashes(tree)).toMatchSnapshot('output tree')

        // Every emitted image is smaller or unchanged, decodes, and keeps its dimensions.
        const checks = await checkImages(root, first.outDir)
        const expected = ['horse', 'rocket', 'no_time_for_that_tiny', 'palette', 'badge', ...(bundler === 'vite' ? ['green', 'mark'] : [])]
        expect(checks.map((c) => path.basename(c.source).split('.')[0]).sort()).toEqual(expected.sort())
        const shrunk = checks.filter((c) => c.after < c.before).map((c) => path.basename(c.source))
        expect(shrunk).toEqual(expect.arrayContaining(['horse.png', 'palette.png', 'badge.svg']))

        if (bundler === 'vite') {
          // The copies in the output were optimized in place; the project's public/ files never are.
          for (const file of ['public/img/green.png', 'public/img/mark.svg']) {
            expect((await readFile(path.join(root, file))).equals(await readFile(path.join(FIXTURE, file))), file).toBe(true)
          }
          expect(shrunk).toEqual(expect.arrayContaining(['green.png', 'mark.svg']))
        }

        // References in JS and CSS still point at files that exist.
        const refs = await checkReferences(first.outDir)
        expect(refs.missing).toEqual([])
        for (const stem of ['horse', 'rocket', 'no_time_for_that_tiny']) expect(refs.fromJs.some((r) => r.startsWith(stem))).toBe(true)
        for (const stem of ['badge', 'palette']) expect(refs.fromCss.some((r) => r.startsWith(stem))).toBe(true)

        // WebP siblings sit next to their image, are valid WebP, and are smaller than what ships.
        const report = await readReport(root)
        const { default: sharp } = await import('sharp')
        const siblings = tree.filter((f) => f.endsWith('.webp'))
        expect(siblings.length).toBeGreaterThan(0)
        for (const sibling of siblings) {
          const image = sibling.slice(0, -'.webp'.length)
          expect(tree).toContain(image)
          expect((await sharp(path.join(first.outDir, sibling)).metadata()).format).toBe('webp')
          const row = report.files.find((f) => f.file === image)
          expect(row?.webpBytes).toBe((await readFile(path.join(first.outDir, sibling))).byteLength)
          expect(row!.webpBytes!).toBeLessThan(row!.optimizedBytes)
        }

        // The report adds up and agrees with the server.
        expect(report.totals.files).toBe(checks.length)
        expect(report.totals.cacheHits).toBe(0)
        expect(report.totals.requests).toBeGreaterThan(0)
        expect(report.totals.optimizedBytes).toBeLessThan(report.totals.originalBytes)
        expect(JSON.stringify(report)).not.toContain(apiKey)
        expect(first.warnings.join('\n')).not.toContain(apiKey)

        // The second build of unchanged sources: everything from the cache, not one request at the server.
        const before = server.stats.totalRequests
        const second = await buildWith(bundler, root, options)
        expect(server.stats.totalRequests - before).toBe(0)
        const again = await readReport(root)
        expect(again.totals).toMatchObject({ requests: 0, tokensUsed: 0, cacheHits: report.totals.files, files: report.totals.files })
        expect(again.totals.optimizedBytes).toBe(report.totals.optimizedBytes)
        expect(await fileTree(second.outDir)).toEqual(tree)
        for (const file of tree) {
          expect((await readFile(path.join(second.outDir, file))).equals(await readFile(path.join(first.outDir, file))), file).toBe(true)
        }
      } finally {
        process.chdir(cwd)
      }
    })

    it('keeps a truncated image as it is, names it, and the build stays green', async () => {
      const root = await prepareApp(`${bundler}-broken`, { broken: true })
      const out = await buildWith(bundler, root, { apiKey, endpoint, compression: 'lossless', cache: false, report: path.join(root, 'report.json') })
      const broken = (await fileTree(out.outDir)).find((f) => /truncated.*\.jpg$/.test(f))
      expect(broken).toBeDefined()
      const original = await readFile(path.join(root, SOURCE_IMAGES.truncated!))
      expect((await readFile(path.join(out.outDir, broken!))).equals(original)).toBe(true)
      const report = await readReport(root)
      const row = report.files.find((f) => f.file === broken)
      expect(row).toMatchObject({ originalBytes: original.byteLength, optimizedBytes: original.byteLength })
      expect(row?.error).toBeTruthy()
      // The other images are still optimized.
      expect(report.files.find((f) => f.file.includes('horse'))?.optimizedBytes).toBeLessThan(report.files.find((f) => f.file.includes('horse'))!.originalBytes)
      expect(out.warnings.join('\n')).toContain(broken!)
    })

    it('an invalid key leaves every original in place with a clear warning', async () => {
      const root = await prepareApp(`${bundler}-badkey`)
      const badKey = 'Zz9'.repeat(10) + 'Zz'
      const out = await buildWith(bundler, root, { apiKey: badKey, endpoint, cache: false, report: path.join(root, 'report.json') })
      const checks = await checkImages(root, out.outDir)
      const raster = checks.filter((c) => !isSvg(c.file)).map((c) => c.file)
      expect(raster.length).toBeGreaterThan(0)
      expect(await untouched(root, out.outDir)).toEqual(expect.arrayContaining(raster))
      const warning = out.warnings.join('\n')
      expect(warning).toMatch(/kept their original bytes/)
      expect(warning).toMatch(/API key/)
      expect(warning).not.toContain(badKey)
      const report = await readReport(root)
      expect(report.files.filter((f) => !isSvg(f.file)).every((f) => f.error && f.optimizedBytes === f.originalBytes)).toBe(true)
      expect(JSON.stringify(report)).not.toContain(badKey)
    })

    it('an exhausted balance leaves every original in place with a clear warning', async () => {
      const root = await prepareApp(`${bundler}-broke`)
      const out = await buildWith(bundler, root, { apiKey: emptyKey, endpoint, cache: false, report: path.join(root, 'report.json') })
      const raster = (await checkImages(root, out.outDir)).filter((c) => !isSvg(c.file)).map((c) => c.file)
      expect(await untouched(root, out.outDir)).toEqual(expect.arrayContaining(raster))
      expect(out.warnings.join('\n')).toMatch(/not enough tokens/)
      const report = await readReport(root)
      expect(report.totals.tokensUsed).toBe(0)
    })

    it('failOnError: true turns a failure into a build error', async () => {
      const root = await prepareApp(`${bundler}-fail`)
      await expect(
        buildWith(bundler, root, { apiKey: emptyKey, endpoint, cache: false, failOnError: true }),
      ).rejects.toThrow(/kept their original bytes[\s\S]*failOnError is on/)
    })

    afterAll(async () => {
      await cleanTmp(['main', 'broken', 'badkey', 'broke', 'fail'].map((label) => `${bundler}-${label}-`))
    })
  })
}
