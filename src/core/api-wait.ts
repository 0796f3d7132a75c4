/**
 * One build's budget for waiting on the API, shared by every phase (bundled assets, Vite's public/
 * copies): the clock starts at the first request and every answer from the API renews it, so it runs out
 * only after `timeoutMs` of silence; then nothing more is sent. An API that works slowly, or a large first
 * build, is never cut; one that never answers costs `timeoutMs` in all. While a
 * phase waits, a progress line comes at least every `everyMs`, so a build never sits silent.
 */
import { seconds } from '../client/duration.ts'
import type { Deadline } from '../client/scheduler.ts'

export interface WaitStatus {
  done: number
  total: number
  /** Requests tried again so far in this build. */
  retries: number
}

export class ApiWait {
  readonly timeoutMs: number
  readonly everyMs: number
  #deadline: Deadline | null = null

  constructor(timeoutMs: number, everyMs: number) {
    this.timeoutMs = timeoutMs
    this.everyMs = everyMs
  }

  /** The build's deadline, started on first use. */
  deadline(): Deadline {
    if (!this.#deadline) {
      const startedAt = Date.now()
      this.#deadline = { startedAt, endsAt: startedAt + this.timeoutMs, renewMs: this.timeoutMs }
    }
    return this.#deadline
  }

  /** Whether an earlier phase already used up the whole budget. */
  spent(): boolean {
    return this.#deadline !== null && Date.now() >= this.#deadline.endsAt
  }

  /** Calls `tell` with a progress line every `everyMs` until `work` settles. */
  async watch<T>(work: Promise<T>, status: () => WaitStatus, tell: (line: string) => void): Promise<T> {
    const timer = setInterval(() => tell(this.line(status())), this.everyMs)
    try {
      return await work
    } finally {
      clearInterval(timer)
    }
  }

  /** e.g. `3/12 images done, 20 s waiting on the API, retried 2 times; originals are kept after 120 s without an answer`. */
  line(status: WaitStatus): string {
    const startedAt = this.#deadline?.startedAt ?? Date.now()
    const retried = status.retries > 0 ? `, retried ${status.retries} time${status.retries === 1 ? '' : 's'}` : ''
    return (
      `${status.done}/${status.total} images done, ${seconds(Date.now() - startedAt)} waiting on the API${retried}; ` +
      `originals are kept after ${seconds(this.timeoutMs)} without an answer`
    )
  }
}
