/**
 * Vite copies `publicDir` into the output directory itself, outside the bundle, so those images never
 * reach `generateBundle` as assets. They are optimized from `publicDir` during `generateBundle` (so the
 * HTML and CSS of the bundle can be pointed at their WebP siblings before they are written), and the
 * results replace the copies once Vite has made them (`writeBundle`), atomically, with the siblings
 * written next to them. Their names never change, and the source files in `publicDir` are never touched.
 */
import { access, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { AssetResult, BuildSession } from '../pipeline.ts'
import { writeBack } from './write-back.ts'

/** Every file under `dir`, as forward-slash paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
}

/**
 * Optimizes `publicDir`'s images. `bundleFiles` are the names the bundle emits: a bundle file that shadows
 * a public one is the bundle's, handled with the bundle.
 */
export async function optimizePublicImages(session: BuildSession, publicDir: string, bundleFiles: ReadonlySet<string>): Promise<AssetResult[]> {
  let names: string[]
  try {
    names = await listFiles(publicDir)
  } catch {
    return []
  }
  const wanted = names.filter((name) => !bundleFiles.has(name) && session.wants(name))
  const inputs = (
    await Promise.all(
      wanted.map(async (name) => {
        try {
          return { fileName: name, data: new Uint8Array(await readFile(path.join(publicDir, name))) }
        } catch {
          return null // removed while the build ran: nothing to optimize
        }
      }),
    )
  ).filter((input) => input !== null)
  return session.process(inputs)
}

/** The public files that will have a `.webp` sibling in the output. */
export function publicSiblings(results: AssetResult[]): Set<string> {
  return new Set(results.filter((r) => r.webp).map((r) => r.fileName))
}

/** Puts the results over the copies Vite made in `outDir` (a copy another plugin removed stays removed). */
export async function writePublicCopies(session: BuildSession, outDir: string, results: AssetResult[]): Promise<void> {
  const present = await Promise.all(results.map((r) => access(path.join(outDir, r.fileName)).then(() => true, () => false)))
  await writeBack(session, outDir, results.filter((_, i) => present[i]))
}
