/**
 * End to end: three `megaoptim serve --database` replicas (child processes) and one real PostgreSQL.
 * One replica is SIGKILLed mid-work; the others finish its images once its leases expire.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { compressiblePng } from '../helpers/images.ts'
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts'
import { exited, killAll, replica, run, worker, type Replica } from '../helpers/replicas.ts'
import { call, files, waitResult } from './helpers.ts'

let pg: TestPostgres | undefined
beforeAll(async () => {
  if (!postgresMissing) pg = await startPostgres()
})
afterAll(async () => {
  killAll()
  await pg?.stop()
})
afterEach(killAll)

async function createKey(database: string, email: string, tokens: number): Promise<string> {
  const made = await run(['keys', 'create', '--database', database, '--name', 'Team', '--email', email, '--tokens', String(tokens)])
  expect(made.code, made.stderr).toBe(0)
  // The key alone on stdout, as with --data-dir.
  expect(made.stdout).toMatch(/^[A-Za-z0-9_-]{20,}\n$/)
  return made.stdout.trim()
}

async function tokensLeft(base: string, key: string): Promise<number> {
  return (await call(`${base}/v1/users/info`, { key })).json.result.tokens as number
}

describe.skipIf(postgresMissing)('replicas over one PostgreSQL', () => {
  it('12 jobs of 5 images round-robin to 3 replicas, one SIGKILLed 2 s in: all 60 optimized, served by any live replica, charged once', async () => {
    const database = await pg!.createDatabase()
    const key = await createKey(database, 'team@example.com', 100)
    // Short leases so the survivors take the dead replica's images over quickly; each image takes at
    // least 300 ms, so the kill lands while the replica has images in hand.
    const flags = ['--workers', '1', '--lease-seconds', '2', '--job-delay', '300', '--rate-limit', '10000']
    const replicas: Replica[] = await Promise.all([0, 1, 2].map(() => replica(database, flags)))
    const images = await Promise.all(Array.from({ length: 60 }, (_, i) => compressiblePng(i)))

    const submitted: { id: string; via: number }[] = []
    // What the doomed replica holds when it dies: images it claimed and never finished.
    const killed = new Promise<number>((resolve) =>
      setTimeout(() => {
        void call(`${replicas[2]!.base}/status`).then((status) => {
          replicas[2]!.child.kill('SIGKILL')
          resolve(status.json.jobs.activeItems as number)
        })
      }, 2000),
    )
    for (let j = 0; j < 12; j++) {
      const via = j % 3
      const form = files(Object.fromEntries([1, 2, 3, 4, 5].map((n) => [`file${n}`, [`j${j}-${n}.png`, images[j * 5 + n - 1]!]])), { type: 'files' })
      // A job sent to the replica that was just killed goes to the next one, as a load balancer would.
      let answer = await call(`${replicas[via]!.base}/v1/optimize`, { key, body: form }).catch(() => undefined)
      if (!answer) answer = await call(`${replicas[(via + 1) % 2]!.base}/v1/optimize`, { key, body: form })
      expect(answer.json.code, answer.text).toBe(202)
      submitted.push({ id: answer.json.process_id, via })
    }
    expect(await killed).toBeGreaterThan(0)
    await exited(replicas[2]!.child)
    const live = replicas.slice(0, 2)

    // Every job answers on every live replica, whichever took it (or died holding its images).
    let optimized = 0
    for (const { id } of submitted) {
      const answers = await Promise.all(live.map((r) => waitResult(`${r.base}/v1`, id, key)))
      for (const answer of answers) {
        expect(answer.json.code, answer.text).toBe(200)
        expect(answer.json.result.map((i: { success: number }) => i.success)).toEqual([1, 1, 1, 1, 1])
      }
      optimized += answers[0]!.json.result.length
      // Every download, from every live replica, whatever the host in the link.
      for (const item of answers[0]!.json.result as { url: string; optimized_size: number }[]) {
        const path = new URL(item.url).pathname
        for (const r of live) {
          const res = await fetch(`${r.base}${path}`)
          expect(res.status).toBe(200)
          expect((await res.arrayBuffer()).byteLength).toBe(item.optimized_size)
        }
      }
    }
    expect(optimized).toBe(60)
    // Charged once per optimized image, however many replicas touched it.
    for (const r of live) expect(await tokensLeft(r.base, key)).toBe(100 - 60)
  })

  it('concurrent spending across replicas never goes below zero', async () => {
    const database = await pg!.createDatabase()
    const key = await createKey(database, 'spender@example.com', 7)
    const flags = ['--workers', '0', '--rate-limit', '10000']
    const replicas = await Promise.all([0, 1].map(() => replica(database, flags)))
    const png = await compressiblePng(1)
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        call(`${replicas[i % 2]!.base}/v1/optimize`, { key, body: files({ file: [`${i}.png`, png] }, { type: 'file' }) }),
      ),
    )
    const codes = answers.map((a) => a.json.code as number)
    expect(codes.filter((c) => c === 202)).toHaveLength(7)
    expect(codes.filter((c) => c === 455)).toHaveLength(9)
    for (const r of replicas) expect(await tokensLeft(r.base, key)).toBe(0)
  })

  it('a key\'s rate limit holds across replicas', async () => {
    const database = await pg!.createDatabase()
    const key = await createKey(database, 'limited@example.com', 0)
    const replicas = await Promise.all([0, 1].map(() => replica(database, ['--workers', '0', '--rate-limit', '4'])))
    const codes: number[] = []
    for (let i = 0; i < 6; i++) codes.push((await call(`${replicas[i % 2]!.base}/v1/users/info`, { key })).json.code)
    // Four allowed in all, not four per replica.
    expect(codes).toEqual([200, 200, 200, 200, 429, 429])
  })

  it('an API-only replica (--workers 0) queues; megaoptim worker, with no API, runs the images', async () => {
    const database = await pg!.createDatabase()
    // The URL from the environment, as a deployment would set it.
    const made = await run(['keys', 'create', '--name', 'T', '--email', 'w@example.com', '--tokens', '3'], { MEGAOPTIM_DATABASE_URL: database })
    expect(made.code, made.stderr).toBe(0)
    const key = made.stdout.trim()
    const api = await replica(database, ['--workers', '0'])
    const form = files({ file: ['a.png', await compressiblePng(3)] }, { type: 'file' })
    const submitted = await call(`${api.base}/v1/optimize`, { key, body: form })
    expect(submitted.json.code).toBe(202)
    const status = await call(`${api.base}/v1/optimize/${submitted.json.process_id}/result?timeout=1`, { key })
    expect(status.json.code).toBe(202)
    await worker(database, ['--workers', '1'])
    const done = await waitResult(`${api.base}/v1`, submitted.json.process_id, key)
    expect(done.json.result[0].success).toBe(1)
    expect(done.json.user.tokens).toBe(2)
  })
})

describe('the storage flags', () => {
  it('serve needs --data-dir or --database, not both; a bad URL is refused without being echoed', async () => {
    const none = await run(['serve'], { MEGAOPTIM_DATABASE_URL: '' })
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('--data-dir or --database (or MEGAOPTIM_DATABASE_URL) is required')
    const both = await run(['keys', 'create', '--data-dir', '/tmp/x', '--database', 'postgres://a@b/c', '--name', 'n', '--email', 'e@x.y', '--tokens', '1'])
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('exclude each other')
    const bad = await run(['worker', '--database', 'mysql://root:hunter2@db/x'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('must be a URL like postgres://')
    expect(bad.stderr).not.toContain('hunter2')
  })
})
