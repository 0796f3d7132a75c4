/**
 * One Vite build in a fresh process, as a user's `vite build` is: `<variant> <outDir> <cacheDir> [root]`
 * (the playground when no root is given). Plain JavaScript, so that with MEGAOPTIM_BENCH_PLUGIN=dist the
 * process loads the plugin from the built package through Node's own loader, exactly as a user's build
 * does; a TypeScript loader hooked into every import would add its cost to the plugin's (and only to
 * the plugin's: the no-plugin build imports nothing of ours). Without it the plugin comes from `src/`, and
 * the caller runs this with `--import tsx`.
 *
 * Prints, on its last line, `{ ms, maxRss, cpu }`: the time inside vite's build(), this process's peak
 * resident set size in bytes, and the CPU time it used (ms, all threads). The caller counts what shipped.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const [variant, outDir, cacheDir, rootArg] = process.argv.slice(2)
const root = rootArg ?? fileURLToPath(new URL('../playground/', import.meta.url))

async function plugins() {
  if (variant === 'plain') return []
  if (variant === 'floor') {
    const { floorPlugin } = await import('./_floor-plugin.mjs')
    return [floorPlugin(process.env.MEGAOPTIM_BENCH_FLOOR_FROM)]
  }
  if (variant === 'vite-plugin-image-optimizer') {
    const { ViteImageOptimizer } = await import('vite-plugin-image-optimizer')
    return [ViteImageOptimizer({ logStats: false })]
  }
  const entry = process.env.MEGAOPTIM_BENCH_PLUGIN === 'dist' ? '../dist/vite.js' : '../src/vite.ts'
  const { default: megaoptim } = await import(entry)
  const report = join(outDir, '..', `${variant}-report.json`)
  if (variant === 'stall') {
    // An API that accepts connections and never answers (bench/stall.ts), with every default kept.
    return [megaoptim({ apiKey: 'STALLkey0123456789abcdefghijklmn', endpoint: process.env.STALL_ENDPOINT, cache: cacheDir, report })]
  }
  // The knobs README's memory paragraph gives a CI job short of memory (the caller also sets MALLOC_ARENA_MAX).
  if (variant === 'cold-lean') return [megaoptim({ cache: cacheDir, report, logLevel: 'warn', concurrency: 2 })]
  return [megaoptim({ cache: cacheDir, report, logLevel: 'warn' })]
}

const list = await plugins()
const started = performance.now()
// The stall variant shows what a user sees: the plugin's progress and summary lines.
const logLevel = variant === 'stall' ? 'info' : 'silent'
await build({ root, configFile: false, logLevel, build: { outDir, emptyOutDir: true, assetsInlineLimit: 0 }, plugins: list })
const ms = performance.now() - started
// resourceUsage() reports kilobytes and microseconds. CPU time stays meaningful on a machine shared with
// other work, where the wall clock does not.
const usage = process.resourceUsage()
const cpu = (usage.userCPUTime + usage.systemCPUTime) / 1000
console.log(JSON.stringify({ ms, maxRss: usage.maxRSS * 1024, cpu }))
