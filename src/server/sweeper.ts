import type { Store } from './store/types.ts'

const DAY = 24 * 60 * 60 * 1000

/** Deletes expired downloads (their files too) and, a day later, the jobs they came from. */
export async function sweep(store: Store, now: number, downloadTtlMs: number): Promise<{ downloads: number; jobs: number }> {
  const expired = store.takeExpiredDownloads(now)
  await Promise.allSettled(expired.map((d) => store.blobs.delete(d.blob)))
  // An output's directory is its own capability: remove it once empty.
  await Promise.allSettled([...new Set(expired.map((d) => `out/${d.dir}`))].map((dir) => store.blobs.deletePrefix(dir)))
  const jobs = store.deleteJobsFinishedBefore(now - downloadTtlMs - DAY)
  return { downloads: expired.length, jobs }
}
