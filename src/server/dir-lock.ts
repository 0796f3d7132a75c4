import { open, readFile, rm } from 'node:fs/promises'
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

/**
 * One server per data dir: two would both resume the same unfinished jobs after a restart. A lock left
 * by a killed server (its pid is gone) is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'server.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx')
      await handle.writeFile(String(process.pid))
      await handle.close()
      return () => rm(file, { force: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new Error(
          `Another megaoptim server (pid ${pid}) is using ${dataDir}: stop it first, or use another --data-dir.`,
        )
      }
      await rm(file, { force: true })
    }
  }
  throw new Error(`Could not lock ${dataDir} (${file} keeps coming back).`)
}
