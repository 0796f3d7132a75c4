/**
 * Vite copies `publicDir` into the output directory itself, outside the bundle, so those images never
 * reach `generateBundle` as assets. They are optimized from `publicDir` while the bundle's own images are
 * (one queue for both); the bundle's HTML and CSS wait only for their WebP siblings. Once the bundle is
 * written (`writeBundle`) the results are put on Vite's copies atomically (temp file + rename), WebP
 * siblings beside them. Their names never change, and the source files in `publicDir` are never touched.
 */
import { readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import type { AssetInput, AssetResult, BuildSession } from '../pipeline.ts'
import { writeBack } from './write-back.ts'

/** Every file under `dir`, as forward-slash paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
}

/** Public images being optimized from `publicDir` itself, before Vite has copied them to `outDir`. */
export interface PublicRun {
  results: Promise<{ source: Uint8Array; result: AssetResult }[]>
}

/**
 * Starts on `publicDir`'s images from the sources while the bundle's own images are still being optimized,
 * so that the two share the workers instead of running one after the other. `bundleFiles` are the names
 * the bundle writes: a bundle file that shadows a public one is the bundle's, handled in `generateBundle`.
 */
export function startPublicImages(session: BuildSession, publicDir: string, bundleFiles: ReadonlySet<string>): PublicRun {
  const results = (async () => {
    let names: string[]
    try {
      names = await listFiles(publicDir)
    } catch {
      return []
    }
    const wanted = names.filter((name) => !bundleFiles.has(name) && session.wants(name))
    const inputs: AssetInput[] = []
    for (const name of wanted) {
      try {
        // Read at once, as the cache's entries are: a promise-based read of a file this size is several
        // thread-pool trips, each resumed on the main thread, which a warm build would wait on.
        inputs.push({ fileName: name, data: readFileSync(path.join(publicDir, name)) })
      } catch {
        // Gone since it was listed: nothing to optimize.
      }
    }
    const sources = new Map(inputs.map((input) => [input.fileName, input.data]))
    return (await session.process(inputs)).map((result) => ({ source: sources.get(result.fileName)!, result }))
  })()
  // Awaited in writeBundle; a build that fails before then must not leave an unhandled rejection.
  results.catch(() => {})
  return { results }
}

/**
 * Puts the results of `startPublicImages` on Vite's copies in `outDir`. A copy that is missing was not
 * copied (or was removed by another plugin): nothing to do. A copy whose bytes differ from the source
 * that was optimized (another plugin rewrote it) is optimized again as it is, so what ships is always
 * derived from what Vite wrote.
 */
export async function finishPublicImages(session: BuildSession, run: PublicRun, outDir: string): Promise<void> {
  const ready: AssetResult[] = []
  const changed: AssetInput[] = []
  // Read at once (see startPublicImages), and only a copy that differs is kept past its comparison.
  const copies = (await run.results).map(({ source, result }) => {
    let copy: Buffer | null
    try {
      copy = readFileSync(path.join(outDir, result.fileName))
    } catch {
      copy = null
    }
    return { result, copy: copy?.equals(source) ? ('same' as const) : copy }
  })
  for (const { result, copy } of copies) {
    if (copy === 'same') ready.push(result)
    else {
      session.forget(result.fileName)
      if (copy) changed.push({ fileName: result.fileName, data: copy })
    }
  }
  await writeBack(session, outDir, ready)
  if (changed.length > 0) await writeBack(session, outDir, await session.process(changed))
}

/** The public files that will have a `.webp` sibling in the output, once the run is done. */
export async function publicSiblings(run: PublicRun): Promise<Set<string>> {
  return new Set((await run.results).filter(({ result }) => result.webp).map(({ result }) => result.fileName))
}
