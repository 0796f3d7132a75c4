/**
 * One build's budget for waiting on the API, shared by every phase (bundled assets, Vite's public/
 * copies): the clock starts at the first request, and once it has run out nothing more is sent. While a
 * phase waits, a progress line comes at least every `everyMs`, so a build never sits silent.
 */
import { seconds } from '../client/duration.ts'

export interface WaitStatus {
  done: number
  total: number
  /** Requests tried again so far in this build. */
  retries: number
}

export class ApiWait {
  readonly timeoutMs: number
  readonly everyMs: number
  #deadline: { startedAt: number; endsAt: number } | null = null

  constructor(timeoutMs: number, everyMs: number) {
    this.timeoutMs = timeoutMs
    this.everyMs = everyMs
  }

  /** The build's deadline, started on first use. */
  deadline(): { startedAt: number; endsAt: number } {
    if (!this.#deadline) {
      const startedAt = Date.now()
      this.#deadline = { startedAt, endsAt: startedAt + this.timeoutMs }
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

  /** e.g. `3/12 images done, 20 s waiting on the API, retried 2 times; originals are kept after 120 s`. */
  line(status: WaitStatus): string {
    const startedAt = this.#deadline?.startedAt ?? Date.now()
    const retried = status.retries > 0 ? `, retried ${status.retries} time${status.retries === 1 ? '' : 's'}` : ''
    return (
      `${status.done}/${status.total} images done, ${seconds(Date.now() - startedAt)} waiting on the API${retried}; ` +
      `originals are kept after ${seconds(this.timeoutMs)}`
    )
  }
}
