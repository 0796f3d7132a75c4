/**
 * One Vite build in a fresh process (`_rebuild-child.mjs`), timed as the whole command, as a user's
 * `vite build` is: shared by the playground (`rebuild`) and `large-app` benchmarks.
 */
import { execFile } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { isDataTextureName } from '../src/core/textures.ts'

const run = promisify(execFile)
const child = fileURLToPath(new URL('./_rebuild-child.mjs', import.meta.url))
const IMAGE = /\.(jpe?g|png|gif|webp|avif|svg)$/i

/**
 * `floor`: the least a caching plugin can do on a warm build (`_floor-plugin.mjs`), shipping `floorFrom`'s
 * images. `cold-lean`: cold with the memory knobs README gives (`concurrency: 2`, `MALLOC_ARENA_MAX=2`).
 */
export type Variant = 'plain' | 'vite-plugin-image-optimizer' | 'cold' | 'cold-lean' | 'warm' | 'floor'

export interface Timing {
  /** The whole command, start-up included. */
  wall: number
  /** Vite's `build()` alone. */
  build: number
  /** Every file shipped. */
  bytes: number
  /** The image files shipped (by extension). */
  imageBytes: number
  /** The data textures among them (normal, roughness, ... maps, by name). */
  textureBytes: number
  imageFiles: number
  /** The child's peak resident set size, in bytes (the embedded server and sharp run in it too). */
  maxRss: number
  /** CPU time of the whole command (ms, every thread): what the build cost, however busy the machine. */
  cpu: number
}

export interface BuildPlace {
  /** Where each variant's output goes (`<work>/<variant>`). */
  work: string
  /** The plugin's cache directory (shared by cold and warm). */
  cacheDir: string
  /** The Vite project; the playground when omitted. */
  root?: string
  /** Load the plugin from `dist/` (as a user does) rather than compiling `src/` on the fly. */
  dist?: boolean
  /** The `floor` variant ships the images of this earlier build's output. */
  floorFrom?: string
}

export async function timedBuild(variant: Variant, place: BuildPlace): Promise<Timing> {
  const outDir = join(place.work, variant)
  // From dist/, Node's own loader, as in a user's build; from src/, through tsx.
  const args = [...(place.dist ? [] : ['--import', 'tsx']), child, variant, outDir, place.cacheDir]
  if (place.root) args.push(place.root)
  const started = performance.now()
  const env = {
    ...process.env,
    ...(place.dist ? { MEGAOPTIM_BENCH_PLUGIN: 'dist' } : {}),
    ...(place.floorFrom ? { MEGAOPTIM_BENCH_FLOOR_FROM: place.floorFrom } : {}),
    // glibc reads it at start-up: two malloc arenas shared by all threads, instead of up to eight per core.
    ...(variant === 'cold-lean' ? { MALLOC_ARENA_MAX: '2' } : {}),
  }
  const { stdout } = await run(process.execPath, args, { maxBuffer: 16 * 1024 * 1024, env })
  const wall = performance.now() - started
  const last = stdout.trim().split('\n').pop()!
  const parsed = JSON.parse(last) as { ms: number; maxRss: number; cpu: number }
  return { wall, build: parsed.ms, maxRss: parsed.maxRss, cpu: parsed.cpu, ...(await shipped(outDir)) }
}

/** What a build shipped: all files, the images among them, and the data textures among those. */
async function shipped(outDir: string): Promise<Pick<Timing, 'bytes' | 'imageBytes' | 'textureBytes' | 'imageFiles'>> {
  const out = { bytes: 0, imageBytes: 0, textureBytes: 0, imageFiles: 0 }
  for (const entry of await readdir(outDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const size = (await stat(join(entry.parentPath, entry.name))).size
    out.bytes += size
    if (!IMAGE.test(entry.name)) continue
    out.imageBytes += size
    out.imageFiles++
    // Data textures (normal, roughness, ... maps) ship lossless with this plugin by design: counted apart.
    if (isDataTextureName(entry.name)) out.textureBytes += size
  }
  return out
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** The median of each figure over repeated builds of one variant. */
export const medianOf = (runs: Timing[]): Timing => ({
  wall: median(runs.map((r) => r.wall)),
  build: median(runs.map((r) => r.build)),
  bytes: runs[0]!.bytes,
  imageBytes: runs[0]!.imageBytes,
  textureBytes: runs[0]!.textureBytes,
  imageFiles: runs[0]!.imageFiles,
  maxRss: median(runs.map((r) => r.maxRss)),
  cpu: median(runs.map((r) => r.cpu)),
})
