import type {
  AccountRecord,
  BlobStore,
  ClaimedItem,
  DownloadRecord,
  ItemOutcome,
  ItemRecord,
  JobOutcome,
  JobRecord,
  NewAccount,
  Store,
} from './types.ts'
import { DuplicateAccountError } from './types.ts'
import { accountIdOf } from '../keys.ts'
import { scrubCredentials, scrubOutcome, withoutCredentials } from './scrub.ts'

export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, Uint8Array>()
  readonly #written = new Map<string, number>()

  async put(key: string, data: Uint8Array): Promise<void> {
    this.#blobs.set(key, data)
    this.#written.set(key, Date.now())
  }

  async putStream(key: string, source: AsyncIterable<Uint8Array>): Promise<number> {
    const chunks: Uint8Array[] = []
    for await (const chunk of source) chunks.push(chunk)
    const data = Buffer.concat(chunks)
    await this.put(key, data)
    return data.length
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.#blobs.get(key)
  }

  async delete(key: string): Promise<void> {
    this.#blobs.delete(key)
    this.#written.delete(key)
  }

  async deletePrefix(prefix: string): Promise<void> {
    const base = prefix.endsWith('/') ? prefix : `${prefix}/`
    for (const key of [...this.#blobs.keys()]) if (key === prefix || key.startsWith(base)) await this.delete(key)
  }

  async listChildren(prefix: string): Promise<{ name: string; mtimeMs: number }[]> {
    const base = `${prefix}/`
    const children = new Map<string, number>()
    for (const [key, at] of this.#written) {
      if (!key.startsWith(base)) continue
      const name = key.slice(base.length).split('/')[0]!
      children.set(name, Math.max(children.get(name) ?? 0, at))
    }
    return [...children].map(([name, mtimeMs]) => ({ name, mtimeMs }))
  }

  get size(): number {
    return this.#blobs.size
  }
}

const clone = <T>(value: T): T => structuredClone(value)

/** The embedded default: nothing touches the disk, everything goes away with the process. */
export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly blobs = new MemoryBlobStore()
  readonly #accounts = new Map<string, AccountRecord>()
  readonly #emails = new Set<string>()
  readonly #jobs = new Map<string, JobRecord>()
  readonly #downloads = new Map<string, DownloadRecord>()
  /** Items of unfinished jobs, in submit order (a Map keeps insertion order). */
  readonly #items = new Map<string, ItemRecord[]>()
  /** The fair order's clock (the tag last claimed) and each account's finish tag. */
  #clock = 0
  readonly #finish = new Map<string, number>()

  createAccount(input: NewAccount): AccountRecord {
    const email = input.email.toLowerCase()
    if (this.#emails.has(email)) throw new DuplicateAccountError(`An account with the email ${input.email} already exists.`)
    const account: AccountRecord = {
      id: accountIdOf(input.apiKey),
      name: input.name,
      email: input.email,
      tokens: input.tokens,
      createdAt: Date.now(),
    }
    this.#accounts.set(account.id, account)
    this.#emails.add(email)
    return clone(account)
  }

  getAccount(apiKey: string): AccountRecord | undefined {
    return this.getAccountById(accountIdOf(apiKey))
  }

  getAccountById(id: string): AccountRecord | undefined {
    const account = this.#accounts.get(id)
    return account && clone(account)
  }

  submitJob(job: JobRecord, reserve: number): boolean {
    // One synchronous block: no other request can run between the check and the debit.
    const account = this.#accounts.get(job.accountId)
    if (!account) return false
    const unlimited = account.tokens === -1
    if (!unlimited) {
      if (account.tokens < reserve) return false
      account.tokens -= reserve
    }
    this.#jobs.set(job.id, clone({ ...job, reserved: unlimited ? 0 : reserve }))
    const tag = Math.max(this.#clock, this.#finish.get(job.accountId) ?? 0)
    this.#finish.set(job.accountId, tag + job.inputs.length)
    this.#items.set(
      job.id,
      job.inputs.map((_, index) => ({ jobId: job.id, index, state: 'waiting', tries: 0, tag, outcome: null })),
    )
    return true
  }

  claimNextItem(): ClaimedItem | undefined {
    let best: ItemRecord | undefined
    // Jobs in submit order, items by position: the first smallest tag is the one.
    for (const items of this.#items.values()) {
      const item = items.find((i) => i.state === 'waiting')
      if (item && (!best || item.tag < best.tag)) best = item
    }
    if (!best) return undefined
    const job = this.#jobs.get(best.jobId)!
    best.state = 'claimed'
    job.status = 'running'
    this.#clock = Math.max(this.#clock, best.tag)
    return { job: clone(job), index: best.index, input: clone(job.inputs[best.index]!), tries: best.tries }
  }

  #item(jobId: string, index: number): ItemRecord | undefined {
    return this.#items.get(jobId)?.[index]
  }

  startItem(jobId: string, index: number): number {
    const item = this.#item(jobId, index)
    if (!item || item.state !== 'claimed') return item?.tries ?? 0
    item.state = 'running'
    return ++item.tries
  }

  completeItem(jobId: string, index: number, outcome: ItemOutcome): number {
    const items = this.#items.get(jobId)
    const item = items?.[index]
    if (!items || !item) return -1
    item.state = 'done'
    item.outcome = clone(scrubOutcome(outcome))
    return items.filter((i) => i.state !== 'done').length
  }

  releaseItem(jobId: string, index: number): void {
    const item = this.#item(jobId, index)
    if (!item || item.state === 'done' || item.state === 'waiting') return
    if (item.state === 'running') item.tries = Math.max(0, item.tries - 1)
    item.state = 'waiting'
  }

  resetInterruptedItems(): void {
    for (const items of this.#items.values()) {
      for (const item of items) if (item.state === 'claimed' || item.state === 'running') item.state = 'waiting'
    }
  }

  countWaitingItems(): number {
    let n = 0
    for (const items of this.#items.values()) for (const item of items) if (item.state === 'waiting') n++
    return n
  }

  jobItems(jobId: string): ItemRecord[] {
    return clone(this.#items.get(jobId) ?? [])
  }

  getJob(id: string): JobRecord | undefined {
    const job = this.#jobs.get(id)
    return job && clone(job)
  }

  finishJob(id: string, outcome: JobOutcome): void {
    const job = this.#jobs.get(id)
    if (!job || job.status === 'done' || job.status === 'failed') return
    const charge = outcome.status === 'done' ? Math.min(outcome.charge, job.reserved) : 0
    const account = this.#accounts.get(job.accountId)
    if (account && account.tokens !== -1) account.tokens += job.reserved - charge
    job.reserved = 0
    this.#items.delete(id)
    job.status = outcome.status
    job.callbackState = job.params.callbackUrl ? 'pending' : null
    job.finishedAt = outcome.finishedAt
    Object.assign(job, withoutCredentials(job.params, job.inputs))
    if (outcome.status === 'done') {
      job.result = clone(outcome.result.map((item) => scrubOutcome({ item, downloads: [], charge: 0 }).item))
      for (const d of outcome.downloads) this.#downloads.set(`${d.dir}/${d.name}`, clone(d))
    } else {
      job.error = scrubCredentials(outcome.error)
    }
  }

  settleCallback(id: string, state: 'delivered' | 'failed'): void {
    const job = this.#jobs.get(id)
    if (job) job.callbackState = state
  }

  pendingCallbacks(): JobRecord[] {
    return [...this.#jobs.values()].filter((j) => j.callbackState === 'pending').map(clone)
  }

  unfinishedJobs(): JobRecord[] {
    return [...this.#jobs.values()].filter((j) => j.status === 'queued' || j.status === 'running').map(clone)
  }

  getDownload(dir: string, name: string): DownloadRecord | undefined {
    const d = this.#downloads.get(`${dir}/${name}`)
    return d && clone(d)
  }

  hasDownloadDir(dir: string): boolean {
    for (const d of this.#downloads.values()) if (d.dir === dir) return true
    return false
  }

  takeExpiredDownloads(now: number): DownloadRecord[] {
    const expired: DownloadRecord[] = []
    for (const [key, d] of this.#downloads) {
      if (d.expiresAt <= now) {
        expired.push(d)
        this.#downloads.delete(key)
      }
    }
    return expired
  }

  deleteJobsFinishedBefore(before: number): number {
    let n = 0
    for (const [id, job] of this.#jobs) {
      if (job.finishedAt !== null && job.finishedAt < before) {
        this.#jobs.delete(id)
        n++
      }
    }
    return n
  }

  close(): void {}
}
