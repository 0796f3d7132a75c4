import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { EngineLike } from '../../src/server/options.ts'
import { MemoryStore } from '../../src/server/store/memory.ts'
import { openSqliteStore } from '../../src/server/store/sqlite.ts'
import { openPostgresStore } from '../../src/server/store/postgres/store.ts'
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts'
import type { ItemOutcome, JobRecord, Store } from '../../src/server/store/types.ts'
import { call, files, startServer, tempDir, waitResult } from './helpers.ts'
import { DEFAULT_IMAGE_PARAMS } from '../../src/contract/params.ts'

const params: JobRecord['params'] = {
  ...DEFAULT_IMAGE_PARAMS,
  callbackUrl: null,
  httpUser: null,
  httpPass: null,
}

async function submit(store: Store, accountId: string, images: number, name: string): Promise<string> {
  const id = randomUUID()
  const job: JobRecord = {
    id,
    accountId,
    status: 'queued',
    params,
    inputs: Array.from({ length: images }, (_, i) => ({ kind: 'url', name: `${name}.${i}`, url: `http://user:secret@example.com/${name}.${i}.png` })),
    reserved: images,
    result: null,
    error: null,
    createdAt: Date.now(),
    finishedAt: null,
  }
  expect(await store.submitJob(job, images)).toBe(true)
  return id
}

const outcome = (name: string, error?: string): ItemOutcome => ({
  item: { success: 0, file_name: name, original_size: 1, optimized_size: 1, saved_bytes: 0, saved_percent: 0, url: null, webp: null, ...(error ? { error } : {}) },
  downloads: [],
  charge: 0,
})

/** Claims until nothing waits, completing each claim at once; the names in claim order. */
async function drain(store: Store): Promise<string[]> {
  const order: string[] = []
  for (let claim = await store.claimNextItem(); claim; claim = await store.claimNextItem()) {
    order.push(claim.input.name)
    await store.startItem(claim.job.id, claim.index)
    await store.completeItem(claim.job.id, claim.index, outcome(claim.input.name))
  }
  return order
}

let pg: TestPostgres | undefined
beforeAll(async () => {
  if (!postgresMissing) pg = await startPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

const backends: [string, () => Promise<Store>][] = [
  ['memory', async () => new MemoryStore()],
  [
    'sqlite',
    async () => {
      const tmp = await tempDir()
      onTestFinished(tmp.remove)
      const store = await openSqliteStore(tmp.dir)
      onTestFinished(() => store.close())
      return store
    },
  ],
  ...(postgresMissing
    ? []
    : [
        [
          'postgres',
          async () => {
            const store = await openPostgresStore({ url: await pg!.createDatabase() })
            onTestFinished(() => store.close())
            return store
          },
        ] as [string, () => Promise<Store>],
      ]),
]

describe.each(backends)('the scheduling semantics of the %s store', (_name, open) => {
  const account = async (store: Store, n: string): Promise<string> =>
    (await store.createAccount({ apiKey: `key-${n}-${'x'.repeat(24)}`, name: n, email: `${n}@example.com`, tokens: -1 })).id

  it('oldest job first, behind its own account\'s earlier images only', async () => {
    const store = await open()
    const a = await account(store, 'a')
    const b = await account(store, 'b')
    const c = await account(store, 'c')
    await submit(store, a, 3, 'a1')
    await submit(store, a, 2, 'a2')
    await submit(store, b, 1, 'b1')
    // b1 came after a2, but a2 queues behind a1's three images: b1 goes first.
    expect(await drain(store)).toEqual(['a1.0', 'a1.1', 'a1.2', 'b1.0', 'a2.0', 'a2.1'])
    // Idle accounts bank no credit: after a quiet spell, jobs run in the order they came again.
    await submit(store, c, 5, 'c1')
    await submit(store, b, 1, 'b2')
    await submit(store, a, 1, 'a3')
    expect(await drain(store)).toEqual(['c1.0', 'c1.1', 'c1.2', 'c1.3', 'c1.4', 'b2.0', 'a3.0'])
  })

  it('the repro: a 5-image job among busy one-image accounts runs before all work queued after it', async () => {
    const store = await open()
    const busy: string[] = []
    for (let i = 0; i < 12; i++) busy.push(await await account(store, `k${i}`))
    const big = await account(store, 'big')
    const order: string[] = []
    const claimOne = async (): Promise<void> => {
      const claim = (await store.claimNextItem())!
      order.push(claim.input.name)
      await store.startItem(claim.job.id, claim.index)
      await store.completeItem(claim.job.id, claim.index, outcome(claim.input.name))
    }
    // Closed loops: each busy key always has one job queued; a new one follows each that is claimed.
    for (const [i, k] of busy.entries()) await await submit(store, k, 1, `k${i}-0`)
    for (let n = 0; n < 6; n++) await claimOne()
    await submit(store, big, 5, 'big')
    for (let round = 1; order.filter((o) => o.startsWith('big')).length < 5; round++) {
      for (const [i, k] of busy.entries()) await await submit(store, k, 1, `k${i}-${round}`)
      await claimOne()
      await claimOne()
    }
    const first = order.indexOf('big.0')
    // Only the 6 one-image jobs queued before it and not yet started ran ahead of it; then its 5 images.
    expect(order.slice(first, first + 5)).toEqual(['big.0', 'big.1', 'big.2', 'big.3', 'big.4'])
    expect(first).toBe(12)
  })

  it('a try counts when a worker starts an item, not when it claims it; a clean release uncounts it', async () => {
    const store = await open()
    const a = await account(store, 'a')
    const id = await submit(store, a, 2, 'j')
    const first = (await store.claimNextItem())!
    expect([first.index, first.tries]).toEqual([0, 0])
    expect((await store.getJob(id))!.status).toBe('running')
    expect((await store.jobItems(id)).map((i) => [i.state, i.tries])).toEqual([['claimed', 0], ['waiting', 0]])
    // A crash while claimed (reading bytes, waiting for the pixel budget): no try.
    await store.resetInterruptedItems()
    expect((await store.jobItems(id)).map((i) => [i.state, i.tries])).toEqual([['waiting', 0], ['waiting', 0]])
    // A crash while running: the try stays.
    await store.claimNextItem()
    expect(await store.startItem(id, 0)).toBe(1)
    await store.resetInterruptedItems()
    expect((await store.jobItems(id)).map((i) => [i.state, i.tries])).toEqual([['waiting', 1], ['waiting', 0]])
    // A clean shutdown gives the run back.
    expect((await store.claimNextItem())!.tries).toBe(1)
    expect(await store.startItem(id, 0)).toBe(2)
    await store.releaseItem(id, 0)
    expect((await store.jobItems(id)).map((i) => [i.state, i.tries])).toEqual([['waiting', 1], ['waiting', 0]])
    expect(await store.countWaitingItems()).toBe(2)
    // Completing counts down; a finished job keeps no items and takes no late outcome.
    await store.claimNextItem()
    expect(await store.completeItem(id, 0, outcome('j.0'))).toBe(1)
    await store.finishJob(id, { status: 'failed', error: 'Too many redirects fetching http://user:secret@example.com/x', finishedAt: Date.now() })
    expect(await store.jobItems(id)).toEqual([])
    expect(await store.completeItem(id, 1, outcome('j.1'))).toBe(-1)
    expect(await store.claimNextItem()).toBeUndefined()
    expect((await store.getJob(id))!.error).toBe('Too many redirects fetching http://example.com/x')
  })

  it('stores no URL credentials in outcomes, results or errors', async () => {
    const store = await open()
    const id = await submit(store, await account(store, 'a'), 1, 'p')
    await store.claimNextItem()
    await store.completeItem(id, 0, outcome('p.0', 'Could not fetch https://alice:s3cret@example.com/p.png: refused'))
    expect(JSON.stringify(await store.jobItems(id))).not.toContain('s3cret')
    await store.finishJob(id, { status: 'done', result: [outcome('p.0', 'see http://alice:s3cret@example.com/p.png').item], downloads: [], charge: 0, finishedAt: Date.now() })
    const job = (await store.getJob(id))!
    expect(JSON.stringify(job)).not.toContain('s3cret')
    expect(JSON.stringify(job)).not.toContain('alice')
    expect(job.result![0]!.error).toBe('see http://example.com/p.png')
  })
})

describe('fair scheduling through real HTTP', () => {
  it('one account\'s backlog holds back another\'s job by the job in progress only', async () => {
    const order: number[] = []
    // Nothing finishes until every job is in: the order then depends on the scheduling alone.
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const recording: EngineLike = {
      version: 'recording-engine',
      sniffFormat: () => 'png',
      isEngineError: (_e: unknown): _e is Error => false,
      optimizeImage: async (input) => {
        order.push(input.length)
        await gate
        return { format: 'png', originalSize: input.length, data: input.subarray(0, input.length / 2), width: 1, height: 1, webp: null }
      },
    }
    const s = await startServer({ engine: recording, workers: 1 })
    onTestFinished(() => s.close())
    const five = (): ReturnType<typeof files> =>
      files(Object.fromEntries([1, 2, 3, 4, 5].map((n) => [`file${n}`, ['a.png', Buffer.alloc(1000, n)]])), { type: 'files' })
    const backlog = []
    for (let i = 0; i < 4; i++) backlog.push(await call(`${s.endpoint}/optimize`, { key: s.key, body: five() }))
    const other = await s.server.createAccount({ name: 'Other', email: 'other@example.com', tokens: -1 })
    const late = await call(`${s.endpoint}/optimize`, { key: other.apiKey, body: files({ file: ['b.png', Buffer.alloc(2000, 9)] }, { type: 'file' }) })
    expect(late.json.code).toBe(202)
    open()
    await waitResult(s.endpoint, late.json.process_id, other.apiKey)
    await Promise.all(backlog.map((b) => waitResult(s.endpoint, b.json.process_id, s.key)))
    expect(order).toHaveLength(21)
    // Right after the first job's five images (first-come-first-served would have run it last).
    expect(order.indexOf(2000)).toBe(5)
  })
})
