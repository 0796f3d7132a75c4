/**
 * One conformance suite, three stores: memory (the embedded default), SQLite (`--data-dir`) and
 * PostgreSQL (`--database`). Every behaviour the server relies on is checked the same way on each.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { accountIdOf, generateApiKey } from '../../src/server/keys.ts'
import { MemoryStore } from '../../src/server/store/memory.ts'
import { openSqliteStore } from '../../src/server/store/sqlite.ts'
import { openPostgresStore } from '../../src/server/store/postgres/store.ts'
import { DuplicateAccountError, type DownloadRecord, type ItemOutcome, type JobRecord, type Store } from '../../src/server/store/types.ts'
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts'
import { tempDir } from './helpers.ts'
import { DEFAULT_IMAGE_PARAMS } from '../../src/contract/params.ts'

let pg: TestPostgres | undefined
beforeAll(async () => {
  if (!postgresMissing) pg = await startPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

const kinds: { kind: Store['kind']; open(): Promise<Store>; skip?: string }[] = [
  { kind: 'memory', open: async () => new MemoryStore() },
  {
    kind: 'sqlite',
    open: async () => {
      const tmp = await tempDir()
      const store = await openSqliteStore(tmp.dir)
      onTestFinished(async () => {
        store.close()
        await tmp.remove()
      })
      return store
    },
  },
  {
    kind: 'postgres',
    skip: postgresMissing,
    open: async () => {
      const store = await openPostgresStore({ url: await pg!.createDatabase(), leaseMs: 60_000 })
      onTestFinished(() => store.close())
      return store
    },
  },
]

function newJob(accountId: string, images: number, extra: Partial<JobRecord['params']> = {}): JobRecord {
  const id = randomUUID()
  return {
    id,
    accountId,
    status: 'queued',
    params: {
      ...DEFAULT_IMAGE_PARAMS,
      callbackUrl: null,
      httpUser: null,
      httpPass: null,
      ...extra,
    },
    inputs: Array.from({ length: images }, (_, i) => ({ kind: 'file' as const, name: `i${i}.png`, blob: `uploads/${id}/${i}` })),
    reserved: images,
    result: null,
    error: null,
    createdAt: Date.now(),
    finishedAt: null,
  }
}

function outcome(name: string, charge: number, dir = randomUUID().replace(/-/g, '')): ItemOutcome {
  return {
    item: {
      success: charge > 0 ? 1 : 0,
      file_name: name,
      original_size: 100,
      optimized_size: 50,
      saved_bytes: 50,
      saved_percent: 50,
      url: charge > 0 ? `/image/${dir}/${name}` : null,
      webp: null,
    },
    downloads: charge > 0 ? [{ dir, name, blob: `out/${dir}/${name}`, size: 50, contentType: 'image/png', jobId: 'x' }] : [],
    charge,
  }
}

async function account(store: Store, tokens: number, email = `${randomUUID()}@example.com`): Promise<string> {
  const apiKey = generateApiKey()
  await store.createAccount({ apiKey, name: 'T', email, tokens })
  return accountIdOf(apiKey)
}

/** Claims, starts and completes every image of the store in order; settles jobs whose last image ended. */
async function runAll(store: Store, charge = 1): Promise<void> {
  for (;;) {
    const claim = await store.claimNextItem()
    if (!claim) return
    await store.startItem(claim.job.id, claim.index)
    const left = await store.completeItem(claim.job.id, claim.index, outcome(claim.input.name, charge))
    if (left === 0) {
      const items = await store.jobItems(claim.job.id)
      const finishedAt = Date.now()
      await store.finishJob(claim.job.id, {
        status: 'done',
        result: items.map((i) => i.outcome!.item),
        downloads: items.flatMap((i) => i.outcome!.downloads.map((d) => ({ ...d, jobId: claim.job.id, expiresAt: finishedAt + 3_600_000 }))),
        charge: items.reduce((n, i) => n + i.outcome!.charge, 0),
        finishedAt,
      })
    }
  }
}

describe.each(kinds)('the $kind store', ({ kind, open, skip }) => {
  it.skipIf(skip)('accounts: found by key or id, the key never stored, one per email (any case)', async () => {
    const store = await open()
    expect(store.kind).toBe(kind)
    const apiKey = generateApiKey()
    const created = await store.createAccount({ apiKey, name: 'Ann', email: 'Ann@Example.com', tokens: 7 })
    expect(created.id).toBe(accountIdOf(apiKey))
    expect(created.id).not.toContain(apiKey)
    expect(await store.getAccount(apiKey)).toMatchObject({ name: 'Ann', email: 'Ann@Example.com', tokens: 7 })
    expect((await store.getAccountById(created.id))?.tokens).toBe(7)
    expect(await store.getAccount(generateApiKey())).toBeUndefined()
    await expect(Promise.resolve().then(() => store.createAccount({ apiKey: generateApiKey(), name: 'B', email: 'ann@example.COM', tokens: 1 }))).rejects.toBeInstanceOf(
      DuplicateAccountError,
    )
  })

  it.skipIf(skip)('submit reserves tokens atomically; a short balance stores nothing; unlimited reserves none', async () => {
    const store = await open()
    const a = await account(store, 5)
    const first = newJob(a, 3)
    expect(await store.submitJob(first, 3)).toBe(true)
    expect((await store.getAccountById(a))?.tokens).toBe(2)
    const short = newJob(a, 3)
    expect(await store.submitJob(short, 3)).toBe(false)
    expect(await store.getJob(short.id)).toBeUndefined()
    expect((await store.getAccountById(a))?.tokens).toBe(2)
    const u = await account(store, -1)
    const free = newJob(u, 4)
    expect(await store.submitJob(free, 4)).toBe(true)
    expect((await store.getJob(free.id))?.reserved).toBe(0)
    expect((await store.getAccountById(u))?.tokens).toBe(-1)
    expect(await store.countWaitingItems()).toBe(7)
    expect((await store.unfinishedJobs()).map((j) => j.id)).toEqual([first.id, free.id])
  })

  it.skipIf(skip)('concurrent spending never goes below zero', async () => {
    const store = await open()
    const a = await account(store, 25)
    const results = await Promise.all(Array.from({ length: 40 }, () => store.submitJob(newJob(a, 1), 1)))
    expect(results.filter(Boolean)).toHaveLength(25)
    expect((await store.getAccountById(a))?.tokens).toBe(0)
  })

  it.skipIf(skip)('images are claimed once each, oldest job first; tries count only when started', async () => {
    const store = await open()
    const a = await account(store, -1)
    const older = newJob(a, 2)
    const newer = newJob(a, 1)
    await store.submitJob(older, 2)
    await store.submitJob(newer, 1)
    const c1 = (await store.claimNextItem())!
    expect([c1.job.id, c1.index, c1.tries]).toEqual([older.id, 0, 0])
    expect((await store.getJob(older.id))?.status).toBe('running')
    expect(await store.startItem(older.id, 0)).toBe(1)
    const c2 = (await store.claimNextItem())!
    const c3 = (await store.claimNextItem())!
    expect(await store.claimNextItem()).toBeUndefined()
    expect(new Set([`${c1.job.id}/${c1.index}`, `${c2.job.id}/${c2.index}`, `${c3.job.id}/${c3.index}`]).size).toBe(3)
    // A clean stop gives a started image back without counting its try.
    await store.releaseItem(older.id, 0)
    expect((await store.jobItems(older.id))[0]).toMatchObject({ state: 'waiting', tries: 0 })
    expect(await store.countWaitingItems()).toBe(1)
  })

  it.skipIf(skip)('settling charges what was optimized, once; the rest of the reservation comes back', async () => {
    const store = await open()
    const a = await account(store, 10)
    const job = newJob(a, 3, { callbackUrl: 'https://user:secret@hooks.example.com/x', httpUser: 'u', httpPass: 'p' })
    await store.submitJob(job, 3)
    expect((await store.getAccountById(a))?.tokens).toBe(7)
    const charges = [1, 0, 1]
    for (let n = 0; n < 3; n++) {
      const claim = (await store.claimNextItem())!
      await store.startItem(claim.job.id, claim.index)
      expect(await store.completeItem(job.id, claim.index, outcome(`i${claim.index}.png`, charges[claim.index]!))).toBe(2 - n)
    }
    const items = await store.jobItems(job.id)
    const downloads: DownloadRecord[] = items.flatMap((i) => i.outcome!.downloads.map((d) => ({ ...d, jobId: job.id, expiresAt: 5_000 })))
    const settle = {
      status: 'done' as const,
      result: items.map((i) => i.outcome!.item),
      downloads,
      charge: 2,
      finishedAt: 1_000,
    }
    await store.finishJob(job.id, settle)
    await store.finishJob(job.id, settle)
    expect((await store.getAccountById(a))?.tokens).toBe(8)
    const done = (await store.getJob(job.id))!
    expect(done).toMatchObject({ status: 'done', reserved: 0, finishedAt: 1_000, callbackState: 'pending' })
    expect(done.result?.map((r) => r.success)).toEqual([1, 0, 1])
    expect(JSON.stringify(done)).not.toContain('secret')
    expect(done.params.httpPass).toBeNull()
    expect(await store.jobItems(job.id)).toEqual([])
    // An image finishing after its job was settled is not kept.
    expect(await store.completeItem(job.id, 0, outcome('late.png', 1))).toBe(-1)
    expect(await store.getDownload(downloads[0]!.dir, downloads[0]!.name)).toMatchObject({ blob: downloads[0]!.blob, expiresAt: 5_000 })
    expect(await store.hasDownloadDir(downloads[0]!.dir)).toBe(true)
    expect((await store.pendingCallbacks()).map((j) => j.id)).toEqual([job.id])
    await store.settleCallback(job.id, 'delivered')
    expect(await store.pendingCallbacks()).toEqual([])
    expect((await store.takeExpiredDownloads(4_999)).length).toBe(0)
    expect((await store.takeExpiredDownloads(5_000)).length).toBe(2)
    expect(await store.getDownload(downloads[0]!.dir, downloads[0]!.name)).toBeUndefined()
    expect(await store.hasDownloadDir(downloads[0]!.dir)).toBe(false)
    expect(await store.deleteJobsFinishedBefore(1_000)).toBe(0)
    expect(await store.deleteJobsFinishedBefore(1_001)).toBe(1)
    expect(await store.getJob(job.id)).toBeUndefined()
  })

  it.skipIf(skip)('a failed job gives every reserved token back', async () => {
    const store = await open()
    const a = await account(store, 4)
    const job = newJob(a, 4)
    await store.submitJob(job, 4)
    expect((await store.getAccountById(a))?.tokens).toBe(0)
    await store.finishJob(job.id, { status: 'failed', error: 'fetching https://u:pw@example.com/a.png failed', finishedAt: 1 })
    expect((await store.getAccountById(a))?.tokens).toBe(4)
    const failed = (await store.getJob(job.id))!
    expect(failed.status).toBe('failed')
    expect(failed.error).not.toContain('pw')
    expect(await store.unfinishedJobs()).toEqual([])
  })

  it.skipIf(skip)('many jobs run to the end: tokens charged equal images optimized', async () => {
    const store = await open()
    const a = await account(store, 30)
    for (let i = 0; i < 6; i++) await store.submitJob(newJob(a, 5), 5)
    await runAll(store)
    expect((await store.getAccountById(a))?.tokens).toBe(0)
    expect(await store.unfinishedJobs()).toEqual([])
    expect(await store.countWaitingItems()).toBe(0)
  })

  it.skipIf(skip)('blobs: put, stream, get, list, delete, delete a prefix', async () => {
    const store = await open()
    const { blobs } = store
    await blobs.put('uploads/j1/0', new Uint8Array([1, 2, 3]))
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([4, 5])
      yield new Uint8Array([6])
    }
    expect(await blobs.putStream('uploads/j1/1', chunks())).toBe(3)
    await blobs.put('uploads/j2/0', new Uint8Array([7]))
    await blobs.put('out/abc/x.png', new Uint8Array(300_000).fill(9))
    expect([...(await blobs.get('uploads/j1/1'))!]).toEqual([4, 5, 6])
    expect((await blobs.get('out/abc/x.png'))!.length).toBe(300_000)
    expect(await blobs.get('uploads/nope')).toBeUndefined()
    const listed = await blobs.listChildren('uploads')
    expect(listed.map((c) => c.name).sort()).toEqual(['j1', 'j2'])
    expect(listed.every((c) => Math.abs(c.mtimeMs - Date.now()) < 60_000)).toBe(true)
    await blobs.deletePrefix('uploads/j1')
    expect(await blobs.get('uploads/j1/0')).toBeUndefined()
    expect(await blobs.get('uploads/j2/0')).toBeDefined()
    await blobs.delete('uploads/j2/0')
    expect(await blobs.get('uploads/j2/0')).toBeUndefined()
    await blobs.deletePrefix('uploads/j2')
    expect(await blobs.listChildren('uploads')).toEqual([])
  })
})
