/**
 * End-to-end helpers: copy the fixture app to a temp dir, build it with a real bundler and the plugin,
 * then look at what came out (file tree, image validity and dimensions, references from JS and CSS).
 */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Options } from '../../src/core/options.ts'
import { fixtureAssets } from './fixture-assets.ts'

export type BundlerName = 'vite' | 'rollup' | 'rolldown' | 'webpack' | 'rspack' | 'esbuild'
export const BUNDLERS: BundlerName[] = ['vite', 'rollup', 'rolldown', 'webpack', 'rspack', 'esbuild']

const here = path.dirname(fileURLToPath(import.meta.url))
export const FIXTURE = path.resolve(here, '../fixtures/app')
const BROKEN = path.resolve(here, '../fixtures/images/truncated.jpg')
export const TMP = path.resolve(here, '../.tmp')

/** Every image of the fixture, by the name it is emitted under (before any hash). */
export const SOURCE_IMAGES: Record<string, string> = {
  horse: 'src/images/horse.png',
  rocket: 'src/images/rocket.jpg',
  no_time_for_that_tiny: 'src/images/no_time_for_that_tiny.gif',
  palette: 'src/images/palette.png',
  badge: 'src/images/badge.svg',
  truncated: 'src/images/truncated.jpg',
  green: 'public/img/green.png',
  mark: 'public/img/mark.svg',
}

/** A fresh copy of the fixture app; with `broken`, it also imports a truncated JPEG. */
export async function prepareApp(label: string, { broken = false } = {}): Promise<string> {
  await mkdir(TMP, { recursive: true })
  const root = await mkdtemp(path.join(TMP, `${label}-`))
  await cp(FIXTURE, root, { recursive: true })
  if (broken) {
    await cp(BROKEN, path.join(root, 'src/images/truncated.jpg'))
    const main = path.join(root, 'src/main.js')
    const code = await readFile(main, 'utf8')
    await writeFile(main, `import broken from './images/truncated.jpg'\n${code}\nconsole.log(broken)\n`)
  }
  return root
}

/** Removes temp apps whose names start with one of `prefixes` (set KEEP_E2E_OUTPUT=1 to keep them). */
export async function cleanTmp(prefixes: string[]): Promise<void> {
  if (process.env.KEEP_E2E_OUTPUT) return
  for (const name of await readdir(TMP).catch(() => [] as string[])) {
    if (prefixes.some((p) => name.startsWith(p))) await rm(path.join(TMP, name), { recursive: true, force: true })
  }
}

export interface BuildOutcome {
  outDir: string
  /** Every warning the bundler reported (the plugin's included). */
  warnings: string[]
}

const IMAGE_TEST = /\.(png|jpe?g|gif|svg)$/i

/**
 * Extra build settings. `html`, for webpack and Rspack: also emit `index.html` with their HTML plugin (html-webpack-plugin, HtmlRspackPlugin),
 * holding an `<img>` of the emitted horse image, as a page template would after `require()`.
 */
export interface BuildExtras {
  html?: boolean
  /** Build without the plugin (the plain build to compare with). */
  plain?: boolean
  /** Vite: also write `.vite/manifest.json` and `.vite/ssr-manifest.json`. */
  manifests?: boolean
}

/** The page the HTML plugins emit: the horse image by the name it has when the page is made. */
function pageWithHorse(assetNames: string[]): string {
  const horse = assetNames.find((n) => /horse-.*\.png$/.test(n))
  return `<!doctype html><html><head><title>page</title></head><body>\n<img src="${horse}" alt="A horse" class="hero" width="64" height="64" loading="lazy">\n</body></html>`
}

export async function buildWith(
  bundler: BundlerName,
  root: string,
  options: Options,
  name = 'dist',
  infos: string[] = [],
  extras: BuildExtras = {},
): Promise<BuildOutcome> {
  const outDir = path.join(root, name)
  const warnings: string[] = []
  const entry = path.join(root, 'src/main.js')
  switch (bundler) {
    case 'vite': {
      const { build, createLogger } = await import('vite')
      const { default: megaoptim } = await import('../../src/vite.ts')
      const logger = createLogger('silent')
      logger.warn = (msg) => void warnings.push(msg)
      logger.warnOnce = (msg) => void warnings.push(msg)
      logger.info = (msg) => void infos.push(msg)
      await build({
        root,
        configFile: false,
        logLevel: 'silent',
        customLogger: logger,
        build: { outDir, emptyOutDir: true, assetsInlineLimit: 0, minify: false, ...(extras.manifests ? { manifest: true, ssrManifest: true } : {}) },
        plugins: extras.plain ? [] : [megaoptim(options)],
      })
      break
    }
    case 'rollup': {
      const { rollup } = await import('rollup')
      const { default: megaoptim } = await import('../../src/rollup.ts')
      const bundle = await rollup({
        input: entry,
        plugins: [fixtureAssets(), ...(extras.plain ? [] : [megaoptim(options)])],
        onLog: (level, log) => void (level === 'warn' && warnings.push(log.message)),
      })
      try {
        await bundle.write({ dir: outDir, format: 'es', assetFileNames: 'assets/[name]-[hash][extname]' })
      } finally {
        await bundle.close()
      }
      break
    }
    case 'rolldown': {
      const { rolldown } = await import('rolldown')
      const { default: megaoptim } = await import('../../src/rolldown.ts')
      const bundle = await rolldown({
        input: entry,
        plugins: [fixtureAssets(), ...(extras.plain ? [] : [megaoptim(options)])],
        onLog: (level, log) => void (level === 'warn' && warnings.push(log.message)),
      })
      try {
        await bundle.write({ dir: outDir, format: 'es', assetFileNames: 'assets/[name]-[hash][extname]' })
      } finally {
        await bundle.close()
      }
      break
    }
    case 'webpack':
    case 'rspack': {
      const common = {
        mode: 'production' as const,
        context: root,
        entry: './src/main.js',
        devtool: false as const,
        output: { path: outDir, clean: true, assetModuleFilename: 'assets/[name]-[contenthash:8][ext]' },
        optimization: { minimize: false },
        infrastructureLogging: { level: 'warn' as const },
      }
      let compiler
      if (bundler === 'webpack') {
        const { default: webpack } = await import('webpack')
        const { default: megaoptim } = await import('../../src/webpack.ts')
        const html = extras.html ? [new (await import('html-webpack-plugin')).default({
          templateContent: (params: Record<string, unknown>) =>
            pageWithHorse((params.compilation as { getAssets(): { name: string }[] }).getAssets().map((a) => a.name)),
        })] : []
        compiler = webpack({
          ...common,
          experiments: { css: true },
          module: { rules: [{ test: IMAGE_TEST, type: 'asset/resource' }] },
          plugins: [...(extras.plain ? [] : [megaoptim(options)]), ...html],
        })
      } else {
        const { rspack, HtmlRspackPlugin } = await import('@rspack/core')
        const { default: megaoptim } = await import('../../src/rspack.ts')
        let assetNames: string[] = []
        const html = extras.html ? [
          // HtmlRspackPlugin's template function sees no compilation: the names come from a hook.
          { apply: (c: { hooks: { thisCompilation: { tap(n: string, f: (comp: { hooks: { processAssets: { tap(o: unknown, f: () => void): void } }; getAssets(): { name: string }[] }) => void): void } } }) =>
            c.hooks.thisCompilation.tap('names', (comp) => comp.hooks.processAssets.tap({ name: 'names', stage: 600 }, () => void (assetNames = comp.getAssets().map((a) => a.name)))) },
          new HtmlRspackPlugin({ templateContent: () => pageWithHorse(assetNames) }),
        ] : []
        compiler = rspack({
          ...common,
          module: { rules: [{ test: IMAGE_TEST, type: 'asset/resource' }, { test: /\.css$/, type: 'css/auto' }] },
          plugins: [...(extras.plain ? [] : [megaoptim(options)]), ...html] as never,
        })
      }
      const stats = await new Promise<{ hasErrors(): boolean; toJson(o: unknown): { errors?: { message: string }[]; warnings?: { message: string }[] } }>(
        (resolve, reject) => {
          ;(compiler as unknown as { run(cb: (err: Error | null, stats: unknown) => void): void }).run((err, result) => {
            ;(compiler as unknown as { close(cb: () => void): void }).close(() => {})
            if (err) reject(err)
            else resolve(result as never)
          })
        },
      )
      const json = stats.toJson({ all: false, errors: true, warnings: true })
      warnings.push(...(json.warnings ?? []).map((w) => w.message))
      if (stats.hasErrors()) throw new Error((json.errors ?? []).map((e) => e.message).join('\n'))
      break
    }
    case 'esbuild': {
      const esbuild = await import('esbuild')
      const { default: megaoptim } = await import('../../src/esbuild.ts')
      const result = await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        outdir: outDir,
        format: 'esm',
        assetNames: 'assets/[name]-[hash]',
        loader: { '.png': 'file', '.jpg': 'file', '.gif': 'file', '.svg': 'file' },
        logLevel: 'silent',
        plugins: extras.plain ? [] : [megaoptim(options)],
      })
      warnings.push(...result.warnings.map((w) => w.text))
      break
    }
  }
  return { outDir, warnings }
}

/** Sorted forward-slash paths of every file under `dir`. */
export async function fileTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort()
}

/** The tree with content hashes replaced, so a snapshot names files without depending on bytes. */
export function withoutHashes(tree: string[]): string[] {
  // Every bundler here is set to 8-character hashes after a dash (Vite's may contain '-' or '_').
  return tree.map((f) => f.replace(/-[A-Za-z0-9_-]{8}(?=\.)/g, '-[hash]')).sort()
}

/** The fixture source an emitted image came from, or null. */
export function sourceOf(root: string, emitted: string): string | null {
  const base = path.posix.basename(emitted)
  if (!IMAGE_TEST.test(base)) return null
  for (const [stem, source] of Object.entries(SOURCE_IMAGES)) {
    if (base.startsWith(stem) && path.extname(base) === path.extname(source)) return path.join(root, source)
  }
  return null
}

export interface ImageCheck {
  file: string
  source: string
  before: number
  after: number
}

/** Every emitted image: smaller or unchanged, decodable, same dimensions as its source. */
export async function checkImages(root: string, outDir: string): Promise<ImageCheck[]> {
  const { default: sharp } = await import('sharp')
  const checks: ImageCheck[] = []
  for (const file of await fileTree(outDir)) {
    const source = sourceOf(root, file)
    if (!source) continue
    const emitted = await readFile(path.join(outDir, file))
    const original = await readFile(source)
    if (emitted.byteLength > original.byteLength) throw new Error(`${file} grew: ${original.byteLength} -> ${emitted.byteLength}`)
    if (!source.endsWith('truncated.jpg')) {
      const [a, b] = await Promise.all([sharp(original).metadata(), sharp(emitted).metadata()])
      if (a.width !== b.width || a.height !== b.height || a.format !== b.format) {
        throw new Error(`${file}: ${a.format} ${a.width}x${a.height} became ${b.format} ${b.width}x${b.height}`)
      }
      await sharp(emitted).raw().toBuffer() // decodes fully, not just the header
    }
    checks.push({ file, source: path.relative(root, source), before: original.byteLength, after: emitted.byteLength })
  }
  return checks
}

/** Image names referenced from the emitted JS and CSS, each checked to exist in the output. */
export async function checkReferences(outDir: string): Promise<{ fromJs: string[]; fromCss: string[]; missing: string[] }> {
  const tree = await fileTree(outDir)
  const basenames = new Set(tree.map((f) => path.posix.basename(f)))
  // webpack keeps module ids such as "./src/images/horse.png" in its output: those are not URLs.
  const refs = (text: string) =>
    [...text.matchAll(/([\w@%./-]*?)([\w@%-]+(?:\.[\w-]+)*\.(?:png|jpe?g|gif|svg|webp))\b/gi)]
      .filter((m) => !/(^|\/)src\/$/.test(m[1]!) && !m[1]!.includes('/src/'))
      .map((m) => m[2]!)
  const fromJs = new Set<string>()
  const fromCss = new Set<string>()
  for (const file of tree) {
    if (!/\.(m?js|css|html)$/.test(file)) continue
    // Comments may name source files (esbuild writes `// src/images/horse.png`): only code counts.
    const text = (await readFile(path.join(outDir, file), 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
    for (const ref of refs(text)) (file.endsWith('.css') ? fromCss : fromJs).add(ref)
  }
  const missing = [...fromJs, ...fromCss].filter((ref) => !basenames.has(ref))
  return { fromJs: [...fromJs].sort(), fromCss: [...fromCss].sort(), missing }
}

export async function sizeOf(file: string): Promise<number> {
  return (await stat(file)).size
}
