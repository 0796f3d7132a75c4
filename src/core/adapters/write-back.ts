/**
 * For bundlers whose images are already on disk when the plugin sees them (esbuild, Vite's public/
 * copies): puts the optimized bytes and WebP siblings in place. Writes are atomic, so a file that cannot
 * be written keeps its original bytes; the session names it, and the build goes on unless failOnError.
 */
import path from 'node:path'
import { writeFileAtomic } from '../atomic.ts'
import type { AssetResult, BuildSession } from '../pipeline.ts'

export async function writeBack(
  session: BuildSession,
  dir: string,
  results: AssetResult[],
  /** Whether the bundler itself wrote a file of that name (then no sibling is written over it). */
  exists: (fileName: string) => boolean = () => false,
): Promise<void> {
  await Promise.all(
    results.map(async (result) => {
      const target = path.join(dir, result.fileName)
      if (result.changed) {
        try {
          await writeFileAtomic(target, result.data)
        } catch (error) {
          session.writeFailed(result.fileName, 'image', error)
          return
        }
      }
      if (result.webp && !exists(`${result.fileName}.webp`)) {
        await writeFileAtomic(`${target}.webp`, result.webp).catch((error: unknown) => session.writeFailed(result.fileName, 'webp', error))
      }
    }),
  )
}
