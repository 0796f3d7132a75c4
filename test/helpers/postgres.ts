/**
 * A real PostgreSQL on loopback for the tests that need one.
 *
 * - `MEGAOPTIM_TEST_DATABASE_URL` (an admin URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) is
 *   used when set: each suite gets a fresh database in that server.
 * - Otherwise Debian's `postgresql` package (`/usr/lib/postgresql/<v>/bin`, installed by `.ci/run`) is
 *   found, `initdb` runs into a temp dir as an unprivileged user (`nobody` when we are root, since postgres
 *   refuses to run as root) and `postgres` listens on a free loopback port, for this suite only.
 * - With neither, `postgresMissing` says why and the suites skip, loudly.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'

function findBinDir(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : path.join(root, versions[0], 'bin')
}

const binDir = findBinDir()

/** Why the PostgreSQL suites cannot run here, or undefined when they can. */
export const postgresMissing: string | undefined =
  process.env.MEGAOPTIM_TEST_DATABASE_URL || binDir
    ? undefined
    : 'PostgreSQL is not installed here (no /usr/lib/postgresql/*/bin/initdb and no MEGAOPTIM_TEST_DATABASE_URL): ' +
      'the PostgreSQL tests are SKIPPED. Install it with "apt-get install -y postgresql" (CI does, in .ci/run).'

if (postgresMissing && process.env.MEGAOPTIM_REQUIRE_POSTGRES === '1') {
  // CI (.ci/run) installs PostgreSQL: a skip there would hide a broken setup.
  throw new Error(`MEGAOPTIM_REQUIRE_POSTGRES=1 but ${postgresMissing}`)
}
if (postgresMissing) console.warn(`\n[megaoptim tests] ${postgresMissing}\n`)

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export interface TestPostgres {
  /** An admin URL (database `postgres`). */
  adminUrl: string
  /** Makes a fresh empty database and returns its URL. */
  createDatabase(): Promise<string>
  stop(): Promise<void>
}

/** postgres refuses to run as root: when we are root, its processes run as `nobody`. */
const NOBODY = 65534
const asUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {}

async function startCluster(): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'megaoptim-pg-'))
  if (process.getuid?.() === 0) chownSync(dir, NOBODY, NOBODY)
  const data = path.join(dir, 'data')
  execFileSync(path.join(binDir!, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    stdio: 'pipe',
    cwd: dir,
    ...asUser,
  })
  const port = await freePort()
  const args = [
    '-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port),
    // A throwaway cluster: durability is not the point, speed is.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200',
  ]
  const child: ChildProcess = spawn(path.join(binDir!, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, ...asUser })
  let log = ''
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()))
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`
  const { default: pg } = await import('pg')
  for (let i = 0; ; i++) {
    const client = new pg.Client({ connectionString: adminUrl })
    try {
      await client.connect()
      await client.end()
      break
    } catch (error) {
      await client.end().catch(() => {})
      if (child.exitCode !== null || i > 100) throw new Error(`postgres did not start: ${(error as Error).message}\n${log}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    adminUrl,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        // SIGQUIT: immediate shutdown, fine for a throwaway cluster.
        child.kill('SIGQUIT')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Starts (or reaches) PostgreSQL for one suite; call `stop()` in afterAll. */
export async function startPostgres(): Promise<TestPostgres> {
  const external = process.env.MEGAOPTIM_TEST_DATABASE_URL
  const cluster = external ? { adminUrl: external, stop: async () => {} } : await startCluster()
  const { default: pg } = await import('pg')
  const made: string[] = []
  return {
    adminUrl: cluster.adminUrl,
    async createDatabase() {
      const name = `megaoptim_test_${randomBytes(6).toString('hex')}`
      const admin = new pg.Client({ connectionString: cluster.adminUrl })
      await admin.connect()
      try {
        await admin.query(`CREATE DATABASE ${name}`)
      } finally {
        await admin.end()
      }
      made.push(name)
      const url = new URL(cluster.adminUrl)
      url.pathname = `/${name}`
      return url.href
    },
    async stop() {
      if (external) {
        const admin = new pg.Client({ connectionString: cluster.adminUrl })
        await admin.connect()
        for (const name of made) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
        await admin.end()
      }
      await cluster.stop()
    },
  }
}
