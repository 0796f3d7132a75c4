import type { Store } from './store/types.ts'

const DAY = 24 * 60 * 60 * 1000

export interface SweepOptions {
  /** The server's clock (downloads expire by it). */
  now: number
  downloadTtlMs: number
  /**
   * Files nothing points to are removed only once older than this (by the real clock), so that a job
   * between writing its files and recording them is never swept from under itself.
   */
  orphanGraceMs: number
}

export interface SweepResult {
  downloads: number
  jobs: number
  orphans: number
}

/**
 * Deletes expired downloads (their files too), a day later the jobs they came from, and files a crash
 * left behind: outputs no download points to, uploads of jobs that are gone or finished.
 */
export async function sweep(store: Store, opts: SweepOptions): Promise<SweepResult> {
  const expired = await store.takeExpiredDownloads(opts.now)
  await Promise.allSettled(expired.map((d) => store.blobs.delete(d.blob)))
  // An output's directory is its own capability: remove it once empty.
  await Promise.allSettled([...new Set(expired.map((d) => `out/${d.dir}`))].map((dir) => store.blobs.deletePrefix(dir)))
  const jobs = await store.deleteJobsFinishedBefore(opts.now - opts.downloadTtlMs - DAY)

  const cutoff = Date.now() - opts.orphanGraceMs
  let orphans = 0
  for (const { name, mtimeMs } of await store.blobs.listChildren('out')) {
    if (mtimeMs < cutoff && /^[0-9a-f]{32}$/.test(name) && !(await store.hasDownloadDir(name))) {
      await store.blobs.deletePrefix(`out/${name}`)
      orphans++
    }
  }
  for (const { name, mtimeMs } of await store.blobs.listChildren('uploads')) {
    const job = await store.getJob(name)
    if (mtimeMs < cutoff && (!job || job.status === 'done' || job.status === 'failed')) {
      await store.blobs.deletePrefix(`uploads/${name}`)
      orphans++
    }
  }
  return { downloads: expired.length, jobs, orphans }
}
