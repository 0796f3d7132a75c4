import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { JobRunner } from '../../src/server/jobs.ts'
import { loadDefaultEngine } from '../../src/server/engine.ts'
import { generateApiKey } from '../../src/server/keys.ts'
import { createOutboundAgent } from '../../src/server/net-guard.ts'
import { resolveServerOptions } from '../../src/server/options.ts'
import type { OutboundContext } from '../../src/server/outbound.ts'
import { MemoryStore } from '../../src/server/store/memory.ts'
import type { ClaimedItem, JobRecord } from '../../src/server/store/types.ts'
import { fixture } from './helpers.ts'
import { DEFAULT_IMAGE_PARAMS } from '../../src/contract/params.ts'

/** A real store whose chosen step fails, as a full disk or a closed SQLite handle would. */
class FaultyStore extends MemoryStore {
  failClaim = false
  override claimNextItem(): ClaimedItem | undefined {
    if (this.failClaim) throw new Error('SQLITE_IOERR: disk I/O error')
    return super.claimNextItem()
  }
}

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown): void => void unhandled.push(reason)
const logged: string[] = []
const originalError = console.error
beforeEach(() => {
  unhandled.length = 0
  logged.length = 0
  process.on('unhandledRejection', onUnhandled)
  console.error = (...args: unknown[]) => void logged.push(String(args[0]))
})
afterEach(() => {
  process.off('unhandledRejection', onUnhandled)
  console.error = originalError
})

async function setup(onFinished: (job: JobRecord) => void): Promise<{ store: FaultyStore; runner: JobRunner; jobId: string; close(): Promise<void> }> {
  const store = new FaultyStore()
  const options = resolveServerOptions({ workers: 1 })
  const agent = createOutboundAgent({ allowPrivateUrls: false, timeoutMs: 5000 })
  const outbound: OutboundContext = { agent, allowPrivateUrls: false, timeoutMs: 5000 }
  const runner = new JobRunner(store, options, outbound, { onFinished, engine: loadDefaultEngine })
  const account = store.createAccount({ apiKey: generateApiKey(), name: 'T', email: 't@example.com', tokens: 10 })
  const jobId = randomUUID()
  await store.blobs.put(`uploads/${jobId}/0`, fixture('horse.png'))
  const job: JobRecord = {
    id: jobId,
    accountId: account.id,
    status: 'queued',
    params: {
      ...DEFAULT_IMAGE_PARAMS,
      callbackUrl: null,
      httpUser: null,
      httpPass: null,
    },
    inputs: [{ kind: 'file', name: 'horse.png', blob: `uploads/${jobId}/0` }],
    reserved: 1,
    result: null,
    error: null,
    createdAt: Date.now(),
    finishedAt: null,
  }
  expect(store.submitJob(job, 1)).toBe(true)
  return {
    store,
    runner,
    jobId,
    close: async () => {
      await runner.close()
      await agent.close()
    },
  }
}

/** Lets pending promise callbacks and the unhandled-rejection hook run. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20))

describe('store faults in the job runner', () => {
  it('a failing claim is logged, not an unhandled rejection; the job stays queued for a restart', async () => {
    const s = await setup(() => {})
    s.store.failClaim = true
    s.runner.start(s.jobId)
    await s.runner.waitFor(s.jobId, 200)
    await settle()
    expect(unhandled).toEqual([])
    expect((await s.runner.stats()).running).toBe(0)
    expect(s.store.getJob(s.jobId)?.status).toBe('queued')
    expect(logged.some((l) => l.includes('claiming the next image failed') && l.includes('SQLITE_IOERR'))).toBe(true)
    expect(s.store.countWaitingItems()).toBe(1)
    await s.close()
  })

  it('a fault after a job is committed done keeps its outputs and its result', async () => {
    const s = await setup(() => {
      throw new Error('callback bookkeeping failed')
    })
    s.runner.start(s.jobId)
    await s.runner.waitFor(s.jobId, 30_000)
    await settle()
    expect(unhandled).toEqual([])
    const job = s.store.getJob(s.jobId)!
    expect(job.status).toBe('done')
    const item = job.result![0]!
    expect(item.success).toBe(1)
    // The download the result points to still has its bytes.
    const [, , dir, name] = (item.url as string).split('/')
    const download = s.store.getDownload(dir!, name!)
    expect(download).toBeDefined()
    const bytes = await s.store.blobs.get(download!.blob)
    expect(bytes?.length).toBe(item.optimized_size)
    expect(logged.some((l) => l.includes(s.jobId) && l.includes('callback bookkeeping failed'))).toBe(true)
    await s.close()
  })
})
