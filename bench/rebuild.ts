/**
 * `npm run bench -- rebuild`: what the plugin costs a build of the playground, side by side with
 * building without it and with vite-plugin-image-optimizer (its default options), in one run.
 *
 * Every build runs in a fresh process, as a user's `vite build` does, and is timed twice: the whole
 * command (what the user waits for: start-up, loading the plugin, the build) and vite's `build()` alone.
 * - warm / no plugin: the price of a rebuild whose images all come from the cache (target <= 1.10);
 * - cold / vite-plugin-image-optimizer: the first build, ours through the embedded server's HTTP path;
 * - bytes shipped / vite-plugin-image-optimizer's bytes shipped.
 * Warm and no-plugin builds are repeated and interleaved and the medians taken: the machine is noisy.
 */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { medianOf, timedBuild as buildIn, type Timing, type Variant } from './_vite-build.ts'

const work = fileURLToPath(new URL('./.tmp/rebuild/', import.meta.url))
const cacheDir = join(work, 'cache')
const REPEATS = 7

const timedBuild = (variant: Variant): Promise<Timing> => buildIn(variant, { work, cacheDir })

await rm(work, { recursive: true, force: true })
await mkdir(work, { recursive: true })

// Throwaway builds warm the OS file cache and tsx's transform cache for every variant alike.
await timedBuild('plain')
await timedBuild('vite-plugin-image-optimizer')

const peer = await timedBuild('vite-plugin-image-optimizer')
const cold = await timedBuild('cold')
const plainRuns: Timing[] = []
const warmRuns: Timing[] = []
for (let i = 0; i < REPEATS; i++) {
  plainRuns.push(await timedBuild('plain'))
  warmRuns.push(await timedBuild('warm'))
}
const plain = medianOf(plainRuns)
const warm = medianOf(warmRuns)

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`
const ms = (n: number) => `${n.toFixed(0)} ms`
console.log(`playground builds, each in a fresh process; plain and warm: median of ${REPEATS}, interleaved\n`)
console.log(`${'variant'.padEnd(40)}${'command'.padStart(10)}${'build()'.padStart(10)}${'shipped'.padStart(14)}`)
const rows: [string, Timing][] = [
  ['no plugin', plain],
  ['vite-plugin-image-optimizer, defaults', peer],
  ['megaoptim, cold cache (embedded)', cold],
  ['megaoptim, warm cache', warm],
]
for (const [name, t] of rows) console.log(`${name.padEnd(40)}${ms(t.wall).padStart(10)}${ms(t.build).padStart(10)}${kib(t.bytes).padStart(14)}`)
console.log('')
const warmRatio = warm.wall / plain.wall
console.log(`warm / no plugin, whole command:          ${warmRatio.toFixed(3)}  (target <= 1.10: ${warmRatio <= 1.1 ? 'met' : 'NOT met'})`)
console.log(`warm / no plugin, vite build() alone:     ${(warm.build / plain.build).toFixed(3)}  (+${(warm.build - plain.build).toFixed(0)} ms)`)
console.log(`cold / vite-plugin-image-optimizer:       ${(cold.wall / peer.wall).toFixed(3)}  (whole command)`)
console.log(`bytes shipped / vite-plugin-image-opt.:   ${(cold.bytes / peer.bytes).toFixed(3)}`)
