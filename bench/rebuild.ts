/**
 * `npm run bench -- rebuild`: what the plugin costs a build of the playground, side by side with
 * building without it and with vite-plugin-image-optimizer (its default options), in one run.
 *
 * - warm / no plugin: the price of a rebuild whose images all come from the cache (target <= 1.10);
 * - cold / vite-plugin-image-optimizer: the first build, ours through the embedded server's HTTP path;
 * - bytes shipped / vite-plugin-image-optimizer's bytes shipped.
 * Warm and no-plugin builds are repeated and interleaved, and the median is taken: the machine is noisy.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type PluginOption } from 'vite'
import { ViteImageOptimizer } from 'vite-plugin-image-optimizer'
import megaoptim from '../src/vite.ts'

const root = fileURLToPath(new URL('../playground/', import.meta.url))
const work = fileURLToPath(new URL('./.tmp/rebuild/', import.meta.url))
const cacheDir = join(work, 'cache')
const REPEATS = 3

async function bytesShipped(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.json')) continue
    total += (await stat(join(entry.parentPath, entry.name))).size
  }
  return total
}

async function timedBuild(name: string, plugins: PluginOption[]): Promise<{ ms: number; bytes: number }> {
  const outDir = join(work, name)
  const started = performance.now()
  await build({
    root,
    configFile: false,
    logLevel: 'silent',
    build: { outDir, emptyOutDir: true, assetsInlineLimit: 0 },
    plugins,
  })
  const ms = performance.now() - started
  return { ms, bytes: await bytesShipped(outDir) }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const ours = () => megaoptim({ cache: cacheDir, report: join(work, 'report.json') })

await rm(work, { recursive: true, force: true })
await mkdir(work, { recursive: true })

// One throwaway build warms Node's module cache and the OS file cache for every variant alike.
await timedBuild('warmup', [])

const plain: number[] = []
const warm: number[] = []
const peer = await timedBuild('vite-plugin-image-optimizer', [ViteImageOptimizer({ logStats: false })])
const cold = await timedBuild('cold', [ours()])
let warmBytes = 0
for (let i = 0; i < REPEATS; i++) {
  plain.push((await timedBuild('plain', [])).ms)
  const w = await timedBuild('warm', [ours()])
  warm.push(w.ms)
  warmBytes = w.bytes
}
const plainBytes = (await timedBuild('plain', [])).bytes

const rows: [string, string, string][] = [
  ['no plugin (median)', `${median(plain).toFixed(0)} ms`, `${(plainBytes / 1024).toFixed(1)} KiB`],
  ['vite-plugin-image-optimizer, defaults', `${peer.ms.toFixed(0)} ms`, `${(peer.bytes / 1024).toFixed(1)} KiB`],
  ['megaoptim, cold cache', `${cold.ms.toFixed(0)} ms`, `${(cold.bytes / 1024).toFixed(1)} KiB`],
  ['megaoptim, warm cache (median)', `${median(warm).toFixed(0)} ms`, `${(warmBytes / 1024).toFixed(1)} KiB`],
]
console.log(`playground build, ${REPEATS} repeats of plain and warm, interleaved\n`)
console.log(`${'variant'.padEnd(40)}${'time'.padStart(12)}${'shipped'.padStart(14)}`)
for (const [a, b, c] of rows) console.log(`${a.padEnd(40)}${b.padStart(12)}${c.padStart(14)}`)
console.log('')
const warmRatio = median(warm) / median(plain)
console.log(`warm / no plugin:                         ${warmRatio.toFixed(3)}  (target <= 1.10: ${warmRatio <= 1.1 ? 'met' : 'NOT met'})`)
console.log(`cold / vite-plugin-image-optimizer:       ${(cold.ms / peer.ms).toFixed(3)}`)
console.log(`bytes shipped / vite-plugin-image-opt.:   ${(cold.bytes / peer.bytes).toFixed(3)}`)
