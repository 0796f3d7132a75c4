/**
 * Rollup and Rolldown have no asset or CSS handling of their own. This small fixture plugin gives them
 * what a real app has: `import url from './x.png'` emits the image as an asset, and an imported CSS file
 * is emitted as an asset whose `url(...)`s point at the emitted images' final names.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'

const IMAGE = /\.(png|jpe?g|gif|svg|webp)$/i

interface Context {
  emitFile(file: { type: 'asset'; name?: string; source: string | Uint8Array; originalFileName?: string }): string
  getFileName(referenceId: string): string
}

export function fixtureAssets() {
  const styles: { name: string; css: string; refs: Map<string, string> }[] = []
  return {
    name: 'fixture-assets',
    buildStart() {
      styles.length = 0
    },
    load(this: Context, id: string) {
      if (IMAGE.test(id)) {
        const ref = this.emitFile({ type: 'asset', name: path.basename(id), originalFileName: id, source: readFileSync(id) })
        // moduleType: Rolldown would otherwise treat a `.css` id as CSS; Rollup ignores the field.
        return { code: `export default new URL(import.meta.ROLLUP_FILE_URL_${ref}).pathname`, moduleType: 'js' }
      }
      if (id.endsWith('.css')) {
        const css = readFileSync(id, 'utf8')
        const refs = new Map<string, string>()
        for (const match of css.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g)) {
          const file = path.resolve(path.dirname(id), match[1]!)
          refs.set(match[1]!, this.emitFile({ type: 'asset', name: path.basename(file), originalFileName: file, source: readFileSync(file) }))
        }
        styles.push({ name: path.basename(id), css, refs })
        return { code: 'export {}', moduleType: 'js' }
      }
      return null
    },
    // Runs before the plugin under test (listed first), as a bundler's CSS pipeline would.
    generateBundle(this: Context) {
      for (const style of styles) {
        let css = style.css
        for (const [url, ref] of style.refs) css = css.split(url).join(`./${path.posix.basename(this.getFileName(ref))}`)
        this.emitFile({ type: 'asset', name: style.name, source: css })
      }
    },
  }
}
