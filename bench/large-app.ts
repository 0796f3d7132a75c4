/**
 * `npm run bench -- large-app`: a Vite app of about 80 images and 27 MB (photos, screenshots with small
 * text, flat art and icons with alpha, glTF-style texture sets; imported from JS, CSS and HTML and placed
 * in `public/`), assembled from public Debian packages on first run (see `_large-app-fixture.ts`), built
 * the four ways issue 7 names, each in a fresh process: no plugin, vite-plugin-image-optimizer with its
 * defaults, this plugin cold on the embedded default, and this plugin warm (and two more, below).
 *
 * Prints the whole command's time, its CPU time (the figure that holds on a machine shared with other
 * work), the image bytes shipped and each build's peak RSS, and the ratios against the targets of issue 7.
 * The plugin is loaded from the built package (`npm run build` runs first), as a user's build loads it.
 * Every variant is repeated, interleaved with its counterpart, and its medians taken: the peer and cold
 * (each cold run from an empty cache) 3 times, no plugin and warm 5 times. Beside cold runs the same build
 * with the memory knobs README gives a CI job short of memory; beside warm runs a floor: a
 * plugin that only hands the warm build's cached bytes to the bundle (`_floor-plugin.mjs`), the least any
 * caching plugin does, so that the warm target can be read against it.
 */
import { execFileSync } from 'node:child_process'
import { cp, mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sniffFormat } from '../src/engine/index.ts'
import { BENCH_CACHE, largeApp, largeAppPictures } from './_large-app-fixture.ts'
import { keepSmaller, recipe } from './_recipe.ts'
import { medianOf, timedBuild, type Timing, type Variant } from './_vite-build.ts'

const REPEATS = 5
/** Where the fixed-quality recipe puts the app's pictures, beside the bytes target. */
const RECIPE_QUALITIES = [40, 60, 75]
/** The cold build is ~20 s and varies by ±0.3 s between identical runs: three of it, and of the peer. */
const COLD_REPEATS = 3
const app = await largeApp()
const work = join(BENCH_CACHE, 'large-app-builds')
// The plugin as a user loads it: the built package, not src/ compiled on the fly in every process.
execFileSync('npm', ['run', 'build', '--silent'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: 'ignore' })
const place = { work, cacheDir: join(work, 'cache'), root: app.root, dist: true }
const build = (variant: Variant): Promise<Timing> => timedBuild(variant, place)

await rm(work, { recursive: true, force: true })
await mkdir(work, { recursive: true })
console.log(`large app: ${app.images} images, ${(app.bytes / 1e6).toFixed(1)} MB, in ${app.root}`)

// A throwaway build warms the OS file cache and tsx's transform cache for every variant alike.
await build('plain')
const peerRuns: Timing[] = []
const coldRuns: Timing[] = []
const leanRuns: Timing[] = []
// Its own cache, so that the warm runs below read what the default cold build wrote.
const leanPlace = { ...place, cacheDir: join(work, 'lean-cache') }
for (let i = 0; i < COLD_REPEATS; i++) {
  peerRuns.push(await build('vite-plugin-image-optimizer'))
  await rm(leanPlace.cacheDir, { recursive: true, force: true })
  leanRuns.push(await timedBuild('cold-lean', leanPlace))
  await rm(place.cacheDir, { recursive: true, force: true })
  coldRuns.push(await build('cold'))
}
// The last cold run filled the cache the warm runs read.
const peer = medianOf(peerRuns)
const cold = medianOf(coldRuns)
const lean = medianOf(leanRuns)
if (new Set(coldRuns.map((r) => r.imageBytes)).size !== 1) console.log(`cold runs shipped different bytes: ${coldRuns.map((r) => r.imageBytes).join(', ')}`)
if (lean.imageBytes !== cold.imageBytes) console.log(`the lean cold build shipped ${lean.imageBytes} bytes of images, the default ${cold.imageBytes}`)
const plainRuns: Timing[] = []
const warmRuns: Timing[] = []
const floorRuns: Timing[] = []
// The floor ships what the first warm run shipped, so it runs after it.
const floorPlace = { ...place, floorFrom: join(work, 'warm-floor-source') }
for (let i = 0; i < REPEATS; i++) {
  plainRuns.push(await build('plain'))
  warmRuns.push(await build('warm'))
  if (i === 0) await cp(join(work, 'warm'), floorPlace.floorFrom, { recursive: true })
  floorRuns.push(await timedBuild('floor', floorPlace))
}
const plain = medianOf(plainRuns)
const warm = medianOf(warmRuns)
const floor = medianOf(floorRuns)

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`
const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`
const s = (n: number) => `${(n / 1000).toFixed(1)} s`
console.log(`\neach build in a fresh process; the peer and cold (both ways): median of ${COLD_REPEATS}, no plugin, warm and the floor: median of ${REPEATS}, interleaved\n`)
console.log(`${'variant'.padEnd(40)}${'command'.padStart(10)}${'build()'.padStart(10)}${'CPU'.padStart(10)}${'images shipped'.padStart(16)}${'peak RSS'.padStart(11)}`)
const rows: [string, Timing][] = [
  ['no plugin', plain],
  ['vite-plugin-image-optimizer, defaults', peer],
  ['megaoptim, cold cache (embedded)', cold],
  ['  cold, concurrency 2, MALLOC_ARENA_MAX=2', lean],
  ['megaoptim, warm cache', warm],
  ['floor: cached bytes handed over, no more', floor],
]
for (const [name, t] of rows) {
  console.log(`${name.padEnd(40)}${s(t.wall).padStart(10)}${s(t.build).padStart(10)}${s(t.cpu).padStart(10)}${mb(t.imageBytes).padStart(16)}${gb(t.maxRss).padStart(11)}`)
}
console.log('')
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met')
const coldRatio = cold.wall / peer.wall
const bytesRatio = cold.imageBytes / peer.imageBytes
const warmRatio = warm.wall / plain.wall
const added = cold.maxRss - plain.maxRss
console.log(`cold / vite-plugin-image-optimizer, whole command: ${coldRatio.toFixed(2)}  (target <= 2.0: ${verdict(coldRatio <= 2)}; CPU time: ${(cold.cpu / peer.cpu).toFixed(2)})`)
console.log(`image bytes shipped / vite-plugin-image-optimizer: ${bytesRatio.toFixed(3)}  (target <= 0.60: ${verdict(bytesRatio <= 0.6)})`)
// The peer quantizes normal and roughness maps to 256 colours; this plugin keeps data textures lossless
// (issue 7, point 5), so the pictures are also compared alone.
const pictures = (t: Timing): number => t.imageBytes - t.textureBytes
console.log(`  pictures alone (data textures excluded):         ${(pictures(cold) / pictures(peer)).toFixed(3)}  (${mb(pictures(cold))} vs ${mb(pictures(peer))}); data textures: ${mb(cold.textureBytes)} lossless vs ${mb(peer.textureBytes)} quantized`)
// With the data textures lossless, the 0.60 target leaves the pictures this share of the peer's pictures,
// and this is the fixed quality at which the usual recipe gets them there, whatever it does to them.
const picturesAllowed = (0.6 * peer.imageBytes - cold.textureBytes) / pictures(peer)
const recipeShares = await recipePictureBytes(app.root)
const recipeLine = RECIPE_QUALITIES.map((q, i) => `q${q} ${(recipeShares[i]! / pictures(peer)).toFixed(3)}`).join(', ')
console.log(`  with the data textures lossless, 0.60 needs the pictures at ${picturesAllowed.toFixed(3)} of the peer's; the recipe (mozjpeg / palette) gives ${recipeLine}`)
console.log(`warm / no plugin, whole command:                   ${warmRatio.toFixed(3)}  (target <= 1.10: ${verdict(warmRatio <= 1.1)}; CPU time: ${(warm.cpu / plain.cpu).toFixed(3)})`)
// What no caching plugin goes below: the warm build's own bytes read from disk and handed to the bundle,
// with nothing of ours loaded, hashed or verified (bench/_floor-plugin.mjs).
if (floor.imageBytes !== warm.imageBytes) console.log(`  the floor shipped ${mb(floor.imageBytes)}, not the warm build's ${mb(warm.imageBytes)}: its figure below does not hold`)
console.log(`  floor / no plugin, whole command:                ${(floor.wall / plain.wall).toFixed(3)}  (the least work a warm build does; warm / floor ${(warm.wall / floor.wall).toFixed(3)})`)
console.log(`plugin's added peak RSS, cold over no plugin:      ${added >= 0 ? '+' : ''}${gb(added)}  (target <= +0.5 GB: ${verdict(added <= 0.5e9)})`)
const leanAdded = lean.maxRss - plain.maxRss
console.log(`  with concurrency 2 and MALLOC_ARENA_MAX=2:       ${leanAdded >= 0 ? '+' : ''}${gb(leanAdded)}, cold / vite-plugin-image-optimizer ${(lean.wall / peer.wall).toFixed(2)}`)

/** The bytes the recipe ships for the app's pictures, at each of RECIPE_QUALITIES (each picture read once). */
async function recipePictureBytes(root: string): Promise<number[]> {
  const totals = RECIPE_QUALITIES.map(() => 0)
  for (const path of largeAppPictures(root)) {
    const input = await readFile(path)
    const format = sniffFormat(input)
    if (!format) continue
    for (const [i, q] of RECIPE_QUALITIES.entries()) totals[i]! += keepSmaller(input, await recipe(input, format, q)).length
  }
  return totals
}
