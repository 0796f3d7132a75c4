/**
 * Vite copies `publicDir` into the output directory itself, outside the bundle, so those images never
 * reach `generateBundle`. Once the bundle is written (`writeBundle`), the copies are on disk: each wanted
 * one is read, optimized and replaced atomically (temp file + rename), and WebP siblings written next to it.
 * The source files in `publicDir` are never touched.
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { BuildSession } from '../pipeline.ts'
import { writeBack } from './write-back.ts'

/** Every file under `dir`, as forward-slash paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
}

/**
 * Optimizes the copies of `publicDir`'s images inside `outDir`. `bundleFiles` are the names the bundle
 * wrote: a bundle file that shadows a public one is the bundle's, already handled in `generateBundle`.
 */
export async function optimizePublicCopies(
  session: BuildSession,
  publicDir: string,
  outDir: string,
  bundleFiles: ReadonlySet<string>,
): Promise<void> {
  let names: string[]
  try {
    names = await listFiles(publicDir)
  } catch {
    return
  }
  const wanted = names.filter((name) => !bundleFiles.has(name) && session.wants(name))
  const inputs = (
    await Promise.all(
      wanted.map(async (name) => {
        try {
          return { fileName: name, data: new Uint8Array(await readFile(path.join(outDir, name))) }
        } catch {
          return null // not copied (e.g. another plugin removed it): nothing to optimize
        }
      }),
    )
  ).filter((input) => input !== null)
  await writeBack(session, outDir, await session.process(inputs))
}
