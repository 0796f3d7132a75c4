/**
 * One playground build in a fresh process, as a user's `vite build` is: `<variant> <outDir> <cacheDir>`.
 * Prints `{ "ms": <time inside vite's build()>, "bytes": <bytes shipped> }` on its last line.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type PluginOption } from 'vite'

const [variant, outDir, cacheDir] = process.argv.slice(2) as [string, string, string]
const root = fileURLToPath(new URL('../playground/', import.meta.url))

async function plugins(): Promise<PluginOption[]> {
  if (variant === 'plain') return []
  if (variant === 'vite-plugin-image-optimizer') {
    const { ViteImageOptimizer } = await import('vite-plugin-image-optimizer')
    return [ViteImageOptimizer({ logStats: false })]
  }
  const { default: megaoptim } = await import('../src/vite.ts')
  const report = join(outDir, '..', `${variant}-report.json`)
  if (variant === 'stall') {
    // An API that accepts connections and never answers (bench/stall.ts), with every default kept.
    return [megaoptim({ apiKey: 'STALLkey0123456789abcdefghijklmn', endpoint: process.env.STALL_ENDPOINT!, cache: cacheDir, report })]
  }
  return [megaoptim({ cache: cacheDir, report, logLevel: 'warn' })]
}

const list = await plugins()
const started = performance.now()
// The stall variant shows what a user sees: the plugin's progress and summary lines.
const logLevel = variant === 'stall' ? 'info' : 'silent'
await build({ root, configFile: false, logLevel, build: { outDir, emptyOutDir: true, assetsInlineLimit: 0 }, plugins: list })
const ms = performance.now() - started

let bytes = 0
for (const entry of await readdir(outDir, { recursive: true, withFileTypes: true })) {
  if (entry.isFile()) bytes += (await stat(join(entry.parentPath, entry.name))).size
}
console.log(JSON.stringify({ ms, bytes }))
