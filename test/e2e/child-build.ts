/**
 * One build in a fresh process, so a test can see what a build loads (sharp? the embedded server?) and
 * prints, as a real `vite build` would. Usage: `node --import tsx child-build.ts '<json>'` with
 * `{ bundler, root, options }`; prints one JSON line: `{ infos, warnings, sharpLoaded, serverLoaded }`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Options } from '../../src/core/options.ts'
import { buildWith, type BundlerName } from './harness.ts'

const { bundler, root, options } = JSON.parse(process.argv[2]!) as { bundler: BundlerName; root: string; options: Options }

const infos: string[] = []
const originalError = console.error
// The plugin's summary goes to stderr through console.error outside Vite; collect it too.
console.error = (...args: unknown[]) => void infos.push(args.map(String).join(' '))
const out = await buildWith(bundler, root, options, 'dist', infos)
console.error = originalError

const loaded = Object.keys(createRequire(import.meta.url).cache)
// sharp may run in worker threads: its native library shows in the process's memory map, whichever thread loaded it.
const maps = existsSync('/proc/self/maps') ? readFileSync('/proc/self/maps', 'utf8') : ''
console.log(
  JSON.stringify({
    infos,
    warnings: out.warnings,
    sharpLoaded: /libvips|sharp-linux/.test(maps) || loaded.some((file) => /[\\/]node_modules[\\/]sharp[\\/]/.test(file)),
    serverLoaded: loaded.some((file) => /[\\/]node_modules[\\/]fastify[\\/]/.test(file)),
  }),
)
