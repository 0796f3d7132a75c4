/** What only a shared PostgreSQL store does: migrations under a lock, leases, events between replicas. */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { accountIdOf, generateApiKey } from '../../src/server/keys.ts'
import { openPostgresStore, type PostgresStore } from '../../src/server/store/postgres/store.ts'
import type { JobRecord } from '../../src/server/store/types.ts'
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts'

let server: TestPostgres | undefined
beforeAll(async () => {
  if (!postgresMissing) server = await startPostgres()
})
afterAll(async () => {
  await server?.stop()
})

async function open(url: string, leaseMs = 60_000): Promise<PostgresStore> {
  const store = await openPostgresStore({ url, leaseMs })
  onTestFinished(() => store.close())
  return store
}

function job(accountId: string, images: number): JobRecord {
  const id = randomUUID()
  return {
    id,
    accountId,
    status: 'queued',
    params: { compression: 'intelligent', webp: false, cmykToRgb: true, keepExif: false, maxWidth: 0, maxHeight: 0, callbackUrl: null, httpUser: null, httpPass: null },
    inputs: Array.from({ length: images }, (_, i) => ({ kind: 'file' as const, name: `${i}.png`, blob: `uploads/${id}/${i}` })),
    reserved: images,
    result: null,
    error: null,
    createdAt: Date.now(),
    finishedAt: null,
  }
}

const optimized = (name: string) => ({
  item: { success: 1 as const, file_name: name, original_size: 10, optimized_size: 5, saved_bytes: 5, saved_percent: 50, url: `/image/x/${name}`, webp: null },
  downloads: [],
  charge: 1,
})

describe.skipIf(postgresMissing)('the PostgreSQL store', () => {
  it('replicas starting together migrate once, under the advisory lock, to the latest version', async () => {
    const url = await server!.createDatabase()
    const stores = await Promise.all([0, 1, 2].map(() => open(url)))
    expect(stores).toHaveLength(3)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    onTestFinished(() => client.end())
    const { rows } = await client.query<{ name: string }>('SELECT name FROM megaoptim_migrations ORDER BY id')
    expect(rows.map((r) => r.name)).toEqual(['0001_initial', '0002_fair_queuing', '0003_result_cache'])
    // A fourth start finds nothing to do.
    await open(url)
    expect((await client.query('SELECT count(*)::int AS n FROM megaoptim_migrations')).rows[0].n).toBe(3)
  })

  it('a replica that dies mid-image lets its lease expire; another finishes the image and the job is charged once', async () => {
    const url = await server!.createDatabase()
    const doomed = await openPostgresStore({ url, leaseMs: 300 })
    const survivor = await open(url, 300)
    const apiKey = generateApiKey()
    await survivor.createAccount({ apiKey, name: 'T', email: 't@example.com', tokens: 5 })
    const j = job(accountIdOf(apiKey), 2)
    expect(await survivor.submitJob(j, 2)).toBe(true)
    const taken = (await doomed.claimNextItem())!
    expect(await doomed.startItem(j.id, taken.index)).toBe(1)
    // While the lease is alive nobody else gets that image.
    const other = (await survivor.claimNextItem())!
    expect(other.index).not.toBe(taken.index)
    expect(await survivor.claimNextItem()).toBeUndefined()
    // The doomed replica stops renewing (it died): once its lease ran out, the image is claimable again.
    await doomed.close()
    let again
    for (let i = 0; i < 100 && !again; i++) {
      again = await survivor.claimNextItem()
      if (!again) await new Promise((r) => setTimeout(r, 50))
    }
    expect(again).toMatchObject({ index: taken.index, tries: 1 })
    expect(await survivor.completeItem(j.id, other.index, optimized('a.png'))).toBe(1)
    expect(await survivor.completeItem(j.id, taken.index, optimized('b.png'))).toBe(0)
    const items = await survivor.jobItems(j.id)
    await survivor.finishJob(j.id, { status: 'done', result: items.map((i) => i.outcome!.item), downloads: [], charge: 2, finishedAt: Date.now() })
    await survivor.finishJob(j.id, { status: 'done', result: items.map((i) => i.outcome!.item), downloads: [], charge: 2, finishedAt: Date.now() })
    expect((await survivor.getAccount(apiKey))?.tokens).toBe(3)
  })

  it('an image whose lease was taken over is not completed twice: the late replica\'s outcome is refused', async () => {
    const url = await server!.createDatabase()
    // Long leases: no renewal runs during the test, so the expiry set below sticks.
    const slow = await open(url)
    const fast = await open(url)
    const apiKey = generateApiKey()
    await fast.createAccount({ apiKey, name: 'T', email: 't@example.com', tokens: -1 })
    const j = job(accountIdOf(apiKey), 1)
    await fast.submitJob(j, 1)
    await slow.claimNextItem()
    // The slow replica's lease runs out as if it had stalled (its renewals stopped reaching the database).
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    onTestFinished(() => client.end())
    await client.query(`UPDATE items SET lease_until = now() - interval '1 second'`)
    expect((await fast.claimNextItem())?.index).toBe(0)
    expect(await slow.completeItem(j.id, 0, optimized('x.png'))).toBe(-1)
    expect(await fast.completeItem(j.id, 0, optimized('x.png'))).toBe(0)
  })

  it('a job finished on one replica wakes the watchers of another (LISTEN/NOTIFY), and a submit tells them of new work', async () => {
    const url = await server!.createDatabase()
    const a = await open(url)
    const b = await open(url)
    const apiKey = generateApiKey()
    await a.createAccount({ apiKey, name: 'T', email: 't@example.com', tokens: -1 })
    let queued!: () => void
    const workSeen = new Promise<void>((resolve) => (queued = resolve))
    let finished!: (id: string) => void
    const finishSeen = new Promise<string>((resolve) => (finished = resolve))
    b.watch({ jobFinished: (id) => finished(id), workQueued: () => queued() })
    const j = job(accountIdOf(apiKey), 1)
    await a.submitJob(j, 1)
    await workSeen
    await a.finishJob(j.id, { status: 'failed', error: 'x', finishedAt: Date.now() })
    expect(await finishSeen).toBe(j.id)
  })

  it('a dropped LISTEN connection is opened again: finished jobs still wake other replicas', async () => {
    const url = await server!.createDatabase()
    const a = await open(url)
    const b = await open(url)
    const apiKey = generateApiKey()
    await a.createAccount({ apiKey, name: 'T', email: 't@example.com', tokens: -1 })
    let seen!: (id: string) => void
    const finishSeen = new Promise<string>((resolve) => (seen = resolve))
    let requeued!: () => void
    const relistened = new Promise<void>((resolve) => (requeued = resolve))
    b.watch({ jobFinished: (id) => seen(id), workQueued: () => requeued() })
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    onTestFinished(() => admin.end())
    // Every LISTENing backend of this database is cut, as a database restart would.
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`)
    // The store listens again and looks for work it may have missed.
    await relistened
    const j = job(accountIdOf(apiKey), 1)
    await a.submitJob(j, 1)
    await a.finishJob(j.id, { status: 'failed', error: 'x', finishedAt: Date.now() })
    expect(await finishSeen).toBe(j.id)
  })

  it('a wrong URL fails with the database named, its password hidden', async () => {
    const url = new URL(server!.adminUrl)
    url.password = 'hunter2'
    url.port = '1'
    const error = await openPostgresStore({ url: url.href }).catch((e: Error) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toContain('Could not open the PostgreSQL database')
    expect((error as Error).message).not.toContain('hunter2')
  })
})
