/**
 * The least work any caching image plugin does on a warm build, as a Vite plugin: it ships the bytes a
 * warm build of this plugin shipped (read from that build's output, `from`), and nothing else. No module of
 * ours is loaded, nothing is hashed or verified, no cache is looked up: each image asset's bytes are read
 * out of the bundle (a plugin cannot know what to ship without them), the cached output is read from disk
 * and handed to the bundle, and the public/ copies Vite wrote are overwritten. `large-app` times it beside
 * the warm build, so the warm target can be read against what no implementation can go below.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const IMAGE = /\.(png|jpe?g|gif|webp|avif)$/i
/** Vite's `[name]-[hash][extname]`: the warm build renamed what it changed, so assets match by name alone. */
const withoutHash = (fileName) => fileName.replace(/-[\w-]{8}(\.\w+)$/, '$1')

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && IMAGE.test(entry.name))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
}

export function floorPlugin(from) {
  let outDir = ''
  const shipped = filesUnder(from)
  const byName = new Map(shipped.map((file) => [withoutHash(file), file]))
  const inBundle = new Set()
  return {
    name: 'warm-floor',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir
    },
    generateBundle(_options, bundle) {
      for (const asset of Object.values(bundle)) {
        if (asset.type !== 'asset' || !IMAGE.test(asset.fileName)) continue
        // Read out, as any plugin must to know which image this is (the bundler copies it).
        void asset.source
        const cached = byName.get(withoutHash(asset.fileName))
        if (!cached) continue
        inBundle.add(cached)
        asset.source = new Uint8Array(readFileSync(join(from, cached)))
      }
    },
    writeBundle() {
      for (const file of shipped) {
        if (!inBundle.has(file)) writeFileSync(join(outDir, file), readFileSync(join(from, file)))
      }
    },
  }
}
