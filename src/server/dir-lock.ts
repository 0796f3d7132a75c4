import { mkdir, open, readFile, rm } from 'node:fs/promises'
import path from 'node:path'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The lock files this process holds: a file naming our own pid but not listed here is stale. */
const held = new Set<string>()

/**
 * One server per data dir: two would both resume the same unfinished jobs after a restart. A lock left
 * by a killed server (its pid is gone) is taken over, and so is one naming our own pid that this process
 * did not take: in a container the server is pid 1 again after a restart.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.resolve(dataDir, 'server.pid')
  await mkdir(path.dirname(file), { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx')
      await handle.writeFile(String(process.pid))
      await handle.close()
      held.add(file)
      return async () => {
        held.delete(file)
        await rm(file, { force: true })
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      const ours = pid === process.pid && !held.has(file)
      if (Number.isInteger(pid) && pid > 0 && !ours && alive(pid)) {
        throw new Error(
          `Another megaoptim server (pid ${pid}) is using ${dataDir}: stop it first, or use another --data-dir.`,
        )
      }
      await rm(file, { force: true })
    }
  }
  throw new Error(`Could not lock ${dataDir} (${file} keeps coming back).`)
}
