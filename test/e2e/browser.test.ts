/**
 * The playground in a real browser (Debian's Chromium through playwright-core). Built with `webp: true`
 * against the real server on loopback and served by a plain static server that knows nothing of WebP:
 * the HTML and CSS must lead Chromium to the siblings themselves. Then `vite preview` negotiates the
 * images JavaScript imports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import megaoptim from '../../src/vite.ts'
import { startApiServer } from './api-server.ts'
import { hasChromium, openChromium, CHROMIUM } from './chromium.ts'
import { serveStatic } from './static-server.ts'
import { fileTree, TMP } from './harness.ts'

const PLAYGROUND = fileURLToPath(new URL('../../playground', import.meta.url))

if (!hasChromium) {
  console.warn(`[browser tests] skipped: ${CHROMIUM} is not installed here (apt-get install -y chromium); CI always has it.`)
}

interface Seen {
  url: string
  path: string
  status: number
  type: string
  bytes: number
}

/** Loads `url`, scrolls every lazy image into view, and waits until each <img> has decoded (or failed). */
async function load(page: Page, url: string): Promise<{ seen: Seen[]; failed: string[]; images: { src: string; current: string; decoded: boolean; inPicture: boolean; gallery: boolean }[] }> {
  const seen: Seen[] = []
  const failed: string[] = []
  page.on('requestfailed', (request) => failed.push(`${request.url()}: ${request.failure()?.errorText}`))
  page.on('response', async (response) => {
    const body = await response.body().catch(() => Buffer.alloc(0))
    seen.push({ url: response.url(), path: new URL(response.url()).pathname, status: response.status(), type: response.headers()['content-type'] ?? '', bytes: body.byteLength })
  })
  await page.goto(url, { waitUntil: 'networkidle' })
  // Page scripts as strings: this project's TypeScript has no DOM types.
  await page.evaluate('window.scrollTo(0, document.body.scrollHeight)')
  await page.evaluate('window.scrollTo(0, 0)')
  const images = (await page.evaluate(`Promise.all([...document.images].map(async (img) => ({
    src: img.getAttribute('src') ?? '',
    decoded: await img.decode().then(() => img.naturalWidth > 0, () => false),
    current: img.currentSrc,
    inPicture: img.parentElement?.tagName === 'PICTURE',
    gallery: img.closest('#gallery') !== null,
  })))`)) as { src: string; current: string; decoded: boolean; inPicture: boolean; gallery: boolean }[]
  await page.waitForLoadState('networkidle')
  return { seen, failed, images }
}

/** PSNR in dB between two same-sized screenshots, over RGB. */
async function psnr(a: Buffer, b: Buffer): Promise<number> {
  const { default: sharp } = await import('sharp')
  const [x, y] = await Promise.all([a, b].map((png) => sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true })))
  expect([x!.info.width, x!.info.height]).toEqual([y!.info.width, y!.info.height])
  let sum = 0
  for (let i = 0; i < x!.data.length; i++) sum += (x!.data[i]! - y!.data[i]!) ** 2
  const mse = sum / x!.data.length
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse)
}

describe.skipIf(!hasChromium)('the playground in Chromium', () => {
  let api: MegaOptimServerHandle
  let apiKey: string
  let root: string
  const optimized = () => path.join(root, 'dist')
  const plain = () => path.join(root, 'dist-plain')

  beforeAll(async () => {
    ({ server: api, apiKey } = await startApiServer())
    await mkdir(TMP, { recursive: true })
    root = await mkdtemp(path.join(TMP, 'browser-'))
    await cp(PLAYGROUND, root, { recursive: true, filter: (src) => !/[\\/](dist|\.cache|node_modules)$/.test(src) })
    const { build } = await import('vite')
    const common = { root, configFile: false as const, logLevel: 'silent' as const, build: { assetsInlineLimit: 0, emptyOutDir: true } }
    await build({ ...common, build: { ...common.build, outDir: plain() } })
    await build({
      ...common,
      build: { ...common.build, outDir: optimized() },
      plugins: [megaoptim({ apiKey, endpoint: api.endpoint, webp: true, cache: false, report: path.join(root, 'report.json') })],
    })
    // Two builds of the playground, one optimizing every image with the real engine: on a busy 2-core box
    // under the full suite this takes minutes, not the default two.
  }, 600_000)
  afterAll(async () => {
    await api?.close()
    if (root && !process.env.KEEP_E2E_OUTPUT) await rm(root, { recursive: true, force: true })
  })

  it('served with no negotiation: every <img> decodes, nothing fails, HTML and CSS images arrive as WebP, JS ones as the optimized originals, and it looks the same', async () => {
    const tree = await fileTree(optimized())
    const [site, plainSite] = await Promise.all([serveStatic(optimized()), serveStatic(plain())])
    const browser = await openChromium()
    try {
      const page = await browser.context.newPage()
      const result = await load(page, site.url)
      // The animated GIF shows whichever frame the clock picked: masked in both shots.
      const mask = [page.locator('img[src*="no_time_for_that_tiny"]')]
      const shot = await page.screenshot({ fullPage: true, mask, animations: 'disabled' })

      const plainPage = await browser.context.newPage()
      const plainResult = await load(plainPage, plainSite.url)
      const plainShot = await plainPage.screenshot({ fullPage: true, mask: [plainPage.locator('img[src*="no_time_for_that_tiny"]')], animations: 'disabled' })

      expect(result.failed).toEqual([])
      expect(result.seen.filter((s) => s.status >= 400)).toEqual([])
      expect(plainResult.failed).toEqual([])
      expect(result.images.length).toBeGreaterThan(0)
      expect(result.images.filter((i) => !i.decoded)).toEqual([])

      // HTML images that have a sibling: in a <picture>, chosen as WebP, and fetched as image/webp.
      const html = result.images.filter((i) => i.inPicture)
      expect(html.map((i) => i.src).sort()).toEqual(['/img/moon.png', '/img/retina.jpg'])
      for (const image of html) {
        expect(image.current.endsWith('.webp'), image.current).toBe(true)
        expect(result.seen.find((s) => s.url === image.current)?.type).toBe('image/webp')
        expect(result.seen.some((s) => s.path === image.src), `${image.src} fetched too`).toBe(false)
      }

      // The CSS background: its WebP, not the PNG.
      const background = tree.find((f) => /^assets\/palette_color-.*\.png$/.test(f))!
      expect(result.seen.find((s) => s.path === `/${background}.webp`)?.type).toBe('image/webp')
      expect(result.seen.some((s) => s.path === `/${background}`)).toBe(false)

      // JS-imported images: the originals' formats, with the optimized bytes.
      const gallery = result.images.filter((i) => i.gallery)
      expect(gallery).toHaveLength(7)
      let smaller = 0
      for (const image of gallery) {
        const file = new URL(image.current).pathname.slice(1)
        expect(file).toMatch(/\.(png|jpg|gif)$/)
        const response = result.seen.find((s) => s.path === `/${file}`)!
        expect(response.bytes).toBe((await readFile(path.join(optimized(), file))).byteLength)
        const plainFile = (await fileTree(plain())).find((f) => f.startsWith(file.replace(/-[^-]+$/, '-')) && path.extname(f) === path.extname(file))!
        if (response.bytes < (await readFile(path.join(plain(), plainFile))).byteLength) smaller++
      }
      expect(smaller).toBeGreaterThan(0)

      // Kept with KEEP_E2E_OUTPUT=1 to look at.
      await Promise.all([writeFile(path.join(root, 'shot-optimized.png'), shot), writeFile(path.join(root, 'shot-plain.png'), plainShot)])
      const db = await psnr(shot, plainShot)
      expect(db).toBeGreaterThanOrEqual(35)
      const webp = result.seen.filter((s) => s.type === 'image/webp')
      console.log(
        `[browser] ${result.seen.length} responses, ${result.failed.length} failed, ${result.images.length} <img> all decoded; ` +
          `as WebP: ${webp.map((s) => path.basename(s.path)).join(', ')}; ` +
          `JS-imported as originals: ${gallery.map((g) => path.basename(g.current)).join(', ')} (${smaller} smaller than the plain build); ` +
          `screenshot PSNR vs plain build: ${db === Infinity ? 'identical' : `${db.toFixed(2)} dB`}`,
      )
    } finally {
      await browser.close()
      await Promise.all([site.close(), plainSite.close()])
    }
  })

  it('vite preview serves a JS-imported image as WebP when Accept asks for it, the original when not, with Vary: Accept', async () => {
    const { preview } = await import('vite')
    const server = await preview({
      root,
      configFile: false,
      logLevel: 'silent',
      build: { outDir: optimized() },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
      plugins: [megaoptim({ apiKey, endpoint: api.endpoint, webp: true, cache: false })],
    })
    try {
      const base = server.resolvedUrls!.local[0]!
      const tree = await fileTree(optimized())
      const astronaut = tree.find((f) => /^assets\/astronaut-.*\.png$/.test(f))!
      expect(tree).toContain(`${astronaut}.webp`)
      const asWebp = await fetch(new URL(astronaut, base), { headers: { accept: 'image/avif,image/webp,image/*,*/*;q=0.8' } })
      expect(asWebp.headers.get('content-type')).toBe('image/webp')
      expect(asWebp.headers.get('vary')).toMatch(/accept/i)
      expect(Buffer.from(await asWebp.arrayBuffer()).equals(await readFile(path.join(optimized(), `${astronaut}.webp`)))).toBe(true)
      const asPng = await fetch(new URL(astronaut, base), { headers: { accept: 'image/png,image/*;q=0.8' } })
      expect(asPng.headers.get('content-type')).toBe('image/png')
      expect(asPng.headers.get('vary')).toMatch(/accept/i)
      expect(Buffer.from(await asPng.arrayBuffer()).equals(await readFile(path.join(optimized(), astronaut)))).toBe(true)

      // And Chromium, which asks for image/webp, gets the gallery as WebP from the preview server.
      const browser = await openChromium()
      try {
        const page = await browser.context.newPage()
        const result = await load(page, base)
        expect(result.failed).toEqual([])
        expect(result.images.filter((i) => !i.decoded)).toEqual([])
        const gallery = result.seen.filter((s) => /^\/assets\/(astronaut|chelsea|coffee|logo)-.*\.png$/.test(s.path))
        expect(gallery.length).toBeGreaterThan(0)
        const types = gallery.map((s) => `${path.basename(s.path)}: ${s.type}`)
        const webpPaths = new Set(tree.filter((f) => f.endsWith('.webp')).map((f) => `/${f.slice(0, -5)}`))
        for (const s of gallery) expect(s.type, s.path).toBe(webpPaths.has(s.path) ? 'image/webp' : 'image/png')
        console.log(`[browser] vite preview: astronaut PNG URL -> image/webp with Accept image/webp, image/png without; Chromium got ${types.join(', ')}`)
      } finally {
        await browser.close()
      }
    } finally {
      await server.close()
    }
  })
})
