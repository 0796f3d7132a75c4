import type {
  AccountRecord,
  BlobStore,
  DownloadRecord,
  JobOutcome,
  JobRecord,
  NewAccount,
  Store,
} from './types.ts'
import { DuplicateAccountError } from './types.ts'
import { accountIdOf } from '../keys.ts'
import { withoutCredentials } from './scrub.ts'

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
    return true
  }

  getJob(id: string): JobRecord | undefined {
    const job = this.#jobs.get(id)
    return job && clone(job)
  }

  startJob(id: string): JobRecord | undefined {
    const job = this.#jobs.get(id)
    if (!job) return undefined
    if (job.status === 'done' || job.status === 'failed') return clone(job)
    job.status = 'running'
    job.attempts += 1
    return clone(job)
  }

  requeueJob(id: string): void {
    const job = this.#jobs.get(id)
    if (!job || job.status !== 'running') return
    job.status = 'queued'
    job.attempts = Math.max(0, job.attempts - 1)
  }

  finishJob(id: string, outcome: JobOutcome): void {
    const job = this.#jobs.get(id)
    if (!job || job.status === 'done' || job.status === 'failed') return
    const charge = outcome.status === 'done' ? Math.min(outcome.charge, job.reserved) : 0
    const account = this.#accounts.get(job.accountId)
    if (account && account.tokens !== -1) account.tokens += job.reserved - charge
    job.reserved = 0
    job.status = outcome.status
    job.callbackState = job.params.callbackUrl ? 'pending' : null
    job.finishedAt = outcome.finishedAt
    Object.assign(job, withoutCredentials(job.params, job.inputs))
    if (outcome.status === 'done') {
      job.result = clone(outcome.result)
      for (const d of outcome.downloads) this.#downloads.set(`${d.dir}/${d.name}`, clone(d))
    } else {
      job.error = outcome.error
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
