/**
 * The JSON report, one schema for the plugin (`report` option) and `megaoptim optimize --report`.
 * Documented in the README ("The report"); change both together, and bump `version` on a breaking change.
 * Only names, sizes, counts and reasons: never a key or an endpoint's credentials.
 */
import type { BuildReport, FileReport, ReferenceCounts } from './report.ts'

export type FileStatus = 'optimized' | 'no-gain' | 'failed'

export interface ReportFile {
  /** Path relative to the output directory (the plugin) or to the folder given (the CLI), with `/`. */
  file: string
  /** `optimized`: smaller bytes ship; `no-gain`: the original ships, nothing to gain; `failed`: the original ships, see `error`. */
  status: FileStatus
  originalBytes: number
  /** What ships: equal to `originalBytes` unless `status` is `optimized`. */
  optimizedBytes: number
  /** The `.webp` sibling written beside it, or null. */
  webpBytes: number | null
  /** Taken from the cache (no request, no token). */
  cached: boolean
  /** Why it failed, or null. */
  error: string | null
  /** Why nothing was gained, when known, or null. */
  note: string | null
}

export interface ReportTotals {
  files: number
  optimized: number
  noGain: number
  failed: number
  originalBytes: number
  optimizedBytes: number
  savedBytes: number
  webpFiles: number
  cacheHits: number
  /** HTTP requests to the API (downloads not included). */
  requests: number
  tokensUsed: number
  /** The balance the API last reported; null when unknown (nothing asked) or unlimited. Never -1. */
  tokensLeft: number | null
}

export interface ReportJson {
  version: 1
  /** `hosted`, `self-hosted` or `embedded` (never the key or its URL). */
  backend: string
  totals: ReportTotals
  files: ReportFile[]
  /** What the build changed outside the images (WebP references, renamed files); absent when nothing, and from the CLI. */
  references?: ReferenceCounts
}

export function statusOf(file: FileReport): FileStatus {
  if (file.error) return 'failed'
  return file.optimizedSize < file.originalSize ? 'optimized' : 'no-gain'
}

export function toReportJson(report: BuildReport): ReportJson {
  const files = report.files.map(
    (f): ReportFile => ({
      file: f.file,
      status: statusOf(f),
      originalBytes: f.originalSize,
      optimizedBytes: f.optimizedSize,
      webpBytes: f.webpSize,
      cached: f.cached,
      error: f.error,
      note: f.note,
    }),
  )
  const t = report.totals
  const count = (status: FileStatus) => files.filter((f) => f.status === status).length
  return {
    version: 1,
    backend: report.backend,
    totals: {
      files: t.files,
      optimized: count('optimized'),
      noGain: count('no-gain'),
      failed: count('failed'),
      originalBytes: t.originalBytes,
      optimizedBytes: t.optimizedBytes,
      savedBytes: t.savedBytes,
      webpFiles: t.webpFiles,
      cacheHits: t.cacheHits,
      requests: t.requests,
      tokensUsed: t.tokensUsed,
      // The API says -1 for an unlimited account: a number a reader would take for a balance.
      tokensLeft: t.tokensLeft === null || t.tokensLeft < 0 ? null : t.tokensLeft,
    },
    files,
    ...(report.references ? { references: { ...report.references } } : {}),
  }
}
