/**
 * Jobs and download links as the SQL stores (SQLite, PostgreSQL) keep them: one row shape and one mapping
 * for both. `Json` is how a JSON column arrives: text in SQLite, already parsed from PostgreSQL's jsonb.
 */
import type { DownloadRecord, JobRecord } from './types.ts'

export interface JobRow<Json> {
  id: string
  account_id: string
  status: JobRecord['status']
  params: Json
  inputs: Json
  reserved: number
  result: Json | null
  error: string | null
  created_at: number
  finished_at: number | null
  callback_state: JobRecord['callbackState']
}

export interface DownloadRow {
  dir: string
  name: string
  blob: string
  size: number
  content_type: string
  job_id: string
  expires_at: number
}

export function jobFromRow<Json>(r: JobRow<Json>, decode: (value: Json) => unknown): JobRecord {
  return {
    id: r.id,
    accountId: r.account_id,
    status: r.status,
    params: decode(r.params) as JobRecord['params'],
    inputs: decode(r.inputs) as JobRecord['inputs'],
    reserved: r.reserved,
    result: r.result === null ? null : (decode(r.result) as JobRecord['result']),
    error: r.error,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    callbackState: r.callback_state,
  }
}

export function downloadFromRow(r: DownloadRow): DownloadRecord {
  return {
    dir: r.dir,
    name: r.name,
    blob: r.blob,
    size: r.size,
    contentType: r.content_type,
    jobId: r.job_id,
    expiresAt: r.expires_at,
  }
}
