import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type Pg from 'pg'
import type { runner as Runner } from 'node-pg-migrate'

/**
 * `pg` (pure JavaScript) and `node-pg-migrate` are optional peer dependencies: loaded only when a
 * `--database` is given, so that a plugin user installs neither.
 */
export async function loadPg(): Promise<typeof Pg> {
  try {
    return (await import('pg')).default
  } catch (error) {
    throw new Error(`The PostgreSQL store needs the "pg" package (${(error as Error).message}); run "npm install pg node-pg-migrate".`, {
      cause: error,
    })
  }
}

/** bigint columns (counts, milliseconds, tokens) as numbers: every value the server stores fits in 2^53. */
export function numericTypes(pg: typeof Pg): Pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as Pg.CustomTypesConfig['getTypeParser'],
  }
}

/** The versioned SQL files, shipped at `migrations/postgres/` in the package (found from src/ or dist/). */
function migrationsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'migrations', 'postgres')
    if (existsSync(candidate)) return candidate
    dir = path.dirname(dir)
  }
  throw new Error('The PostgreSQL migrations (migrations/postgres/*.sql) are missing from the unplugin-megaoptim package.')
}

/** Our own advisory-lock key ("megaopti" in ASCII), so the lock does not collide with other tools' migrations. */
const MIGRATION_LOCK = 0x6d6567616f707469n

/**
 * Brings the schema up to date. Every replica calls this at start; node-pg-migrate takes a PostgreSQL
 * advisory lock and, in `wait` mode, the others block on it until the first one has migrated, then find
 * nothing left to do. Each file runs once, in a transaction, recorded in `megaoptim_migrations`.
 */
export async function migrate(client: Pg.Client): Promise<void> {
  let runner: typeof Runner
  try {
    ;({ runner } = await import('node-pg-migrate'))
  } catch (error) {
    throw new Error(`The PostgreSQL store needs the "node-pg-migrate" package (${(error as Error).message}); run "npm install pg node-pg-migrate".`, {
      cause: error,
    })
  }
  await runner({
    dbClient: client,
    dir: migrationsDir(),
    direction: 'up',
    migrationsTable: 'megaoptim_migrations',
    count: Number.POSITIVE_INFINITY,
    singleTransaction: true,
    checkOrder: true,
    advisoryLockMode: 'wait',
    lockValue: Number(MIGRATION_LOCK % BigInt(Number.MAX_SAFE_INTEGER)),
    log: () => {},
  })
}
