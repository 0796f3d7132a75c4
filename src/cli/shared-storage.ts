import path from 'node:path'
import { UsageError } from './shared-args.ts'

export const DATABASE_ENV = 'MEGAOPTIM_DATABASE_URL'

export const STORAGE_HELP = `  --data-dir DIR           one machine: the SQLite database and the uploads live in DIR
  --database URL           replicas: a shared PostgreSQL, postgres://USER@HOST:PORT/DB
                           (default: $${DATABASE_ENV}); needs "npm install pg node-pg-migrate"`

/**
 * Where a server command keeps its state: `--data-dir` (SQLite), or `--database` / MEGAOPTIM_DATABASE_URL
 * (PostgreSQL). An explicit flag wins over the environment; both flags at once is a mistake.
 */
export function storageArgs(values: { 'data-dir'?: unknown; database?: unknown }): { dataDir?: string; database?: string } {
  const dataDir = values['data-dir'] as string | undefined
  const flag = values.database as string | undefined
  if (dataDir !== undefined && flag !== undefined) {
    throw new UsageError('--data-dir and --database exclude each other: SQLite for one machine, PostgreSQL for replicas')
  }
  if (dataDir !== undefined) {
    if (dataDir === '') throw new UsageError('--data-dir must not be empty')
    return { dataDir: path.resolve(dataDir) }
  }
  const database = flag ?? process.env[DATABASE_ENV]
  if (database === undefined || database === '') {
    throw new UsageError(`--data-dir or --database (or ${DATABASE_ENV}) is required`)
  }
  if (!/^postgres(ql)?:\/\//i.test(database)) {
    // The URL may carry a password: say what is expected, never echo it.
    throw new UsageError(`${flag === undefined ? DATABASE_ENV : '--database'} must be a URL like postgres://USER@HOST:5432/DB`)
  }
  return { database }
}
