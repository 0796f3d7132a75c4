/**
 * One Vite build in a fresh process, as a user's `vite build` is: `<variant> <outDir> <cacheDir> [root]`
 * (the playground when no root is given). With MEGAOPTIM_BENCH_PLUGIN=dist the plugin is loaded from the
 * built package, as a user loads it, instead of being compiled from `src/` on the fly. Prints, on its last line, `{ ms, bytes, imageBytes, imageFiles,
 * maxRss, cpu }`: the time inside vite's build(), the bytes shipped (all files, then images only), this
 * process's peak resident set size in bytes and the CPU time it used (ms, all threads).
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type PluginOption } from 'vite'
import { isDataTextureName } from '../src/core/textures.ts'
import type megaoptimVite from '../src/vite.ts'

const [variant, outDir, cacheDir, rootArg] = process.argv.slice(2) as [string, string, string, string | undefined]
const root = rootArg ?? fileURLToPath(new URL('../playground/', import.meta.url))
const IMAGE = /\.(jpe?g|png|gif|webp|avif|svg)$/i

async function plugins(): Promise<PluginOption[]> {
  if (variant === 'plain') return []
  if (variant === 'vite-plugin-image-optimizer') {
    const { ViteImageOptimizer } = await import('vite-plugin-image-optimizer')
    return [ViteImageOptimizer({ logStats: false })]
  }
  const entry = process.env.MEGAOPTIM_BENCH_PLUGIN === 'dist' ? '../dist/vite.js' : '../src/vite.ts'
  const { default: megaoptim } = (await import(entry)) as { default: typeof megaoptimVite }
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
let imageBytes = 0
let imageFiles = 0
// Data textures (normal, roughness, ... maps) ship lossless with this plugin by design: counted apart.
let textureBytes = 0
for (const entry of await readdir(outDir, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile()) continue
  const size = (await stat(join(entry.parentPath, entry.name))).size
  bytes += size
  if (IMAGE.test(entry.name)) {
    imageBytes += size
    imageFiles++
    if (isDataTextureName(entry.name)) textureBytes += size
  }
}
// resourceUsage() reports kilobytes and microseconds. CPU time stays meaningful on a machine shared with
// other work, where the wall clock does not.
const usage = process.resourceUsage()
const cpu = (usage.userCPUTime + usage.systemCPUTime) / 1000
console.log(JSON.stringify({ ms, bytes, imageBytes, textureBytes, imageFiles, maxRss: usage.maxRSS * 1024, cpu }))
