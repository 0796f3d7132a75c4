/**
 * One build in a fresh process, so a test can see what a build loads (sharp? the embedded server?) and
 * prints, as a real `vite build` would. Usage: `node --import tsx child-build.ts '<json>'` with
 * `{ bundler, root, options }`; prints one JSON line: `{ infos, warnings, sharpLoaded, serverLoaded,
 * loaded, collations }`, `loaded` being every module file the build loaded, ES modules and CommonJS alike,
 * and `collations` how many times the build compared strings by locale (the first starts ICU's collator).
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { fileURLToPath } from 'node:url'
import { MessageChannel } from 'node:worker_threads'
import type { Options } from '../../src/core/options.ts'
import { buildWith, type BundlerName } from './harness.ts'

const { bundler, root, options } = JSON.parse(process.argv[2]!) as { bundler: BundlerName; root: string; options: Options }

// ES modules never show in require.cache: a load hook (on the loader thread) names each one it loads.
const esm = new Set<string>()
const { port1, port2 } = new MessageChannel()
port1.on('message', (url: string) => esm.add(url))
port1.unref()
const hook = `let port
export function initialize(data) { port = data.port }
export async function load(url, context, next) { port.postMessage(url); return next(url, context) }`
register(`data:text/javascript,${encodeURIComponent(hook)}`, { data: { port: port2 }, transferList: [port2] })

// Locale-aware comparison starts ICU's collator on first use: count what the build asks of it.
let collations = 0
const localeCompare = String.prototype.localeCompare
String.prototype.localeCompare = function (this: string, ...args: Parameters<string['localeCompare']>) {
  collations++
  return localeCompare.apply(this, args)
}
const Collator = Intl.Collator
Intl.Collator = new Proxy(Collator, {
  construct(target, args: ConstructorParameters<typeof Intl.Collator>) {
    collations++
    return new target(...args)
  },
  apply(target, _this, args: ConstructorParameters<typeof Intl.Collator>) {
    collations++
    return target(...args)
  },
})

const infos: string[] = []
const originalError = console.error
// The plugin's summary goes to stderr through console.error outside Vite; collect it too.
console.error = (...args: unknown[]) => void infos.push(args.map(String).join(' '))
const out = await buildWith(bundler, root, options, 'dist', infos)
console.error = originalError
String.prototype.localeCompare = localeCompare
Intl.Collator = Collator

// Messages from the loader thread arrive on this thread's event loop: let the last ones in.
await new Promise((resolve) => setTimeout(resolve, 50))
const files = [...esm].filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url.replace(/\?.*$/, '')))
const loaded = [...new Set([...Object.keys(createRequire(import.meta.url).cache), ...files])]
// sharp may run in worker threads: its native library shows in the process's memory map, whichever thread loaded it.
const maps = existsSync('/proc/self/maps') ? readFileSync('/proc/self/maps', 'utf8') : ''
console.log(
  JSON.stringify({
    infos,
    warnings: out.warnings,
    sharpLoaded: /libvips|sharp-linux/.test(maps) || loaded.some((file) => /[\\/]node_modules[\\/]sharp[\\/]/.test(file)),
    serverLoaded: loaded.some((file) => /[\\/]node_modules[\\/]fastify[\\/]/.test(file)),
    loaded,
    collations,
  }),
)
