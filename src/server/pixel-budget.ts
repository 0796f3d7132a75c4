interface Waiter {
  cost: number
  grant(): void
}

/**
 * Decoded pixels are what costs memory (and CPU): the workers share one budget of pixels. An image waits,
 * still undecoded, until its pixels fit; first come, first served, so a large image is not starved by a
 * stream of small ones. An image larger than the whole budget runs alone.
 */
export class PixelBudget {
  readonly capacity: number
  #used = 0
  #peak = 0
  readonly #queue: Waiter[] = []

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** Pixels held now, and the most ever held at once (for /status and the benchmark). */
  get stats(): { capacity: number; used: number; peak: number; waiting: number } {
    return { capacity: this.capacity, used: this.#used, peak: this.#peak, waiting: this.#queue.length }
  }

  /** Resolves with the release function once `pixels` (null: unknown) fit; rejects when `signal` aborts first. */
  acquire(pixels: number | null, signal: AbortSignal): Promise<() => void> {
    const cost = Math.min(pixels ?? this.capacity, this.capacity)
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        this.#used -= cost
        this.#drain()
      }
      const onAbort = (): void => {
        const at = this.#queue.indexOf(waiter)
        if (at >= 0) this.#queue.splice(at, 1)
        this.#drain()
        reject(signal.reason)
      }
      const waiter: Waiter = {
        cost,
        grant: () => {
          signal.removeEventListener('abort', onAbort)
          this.#used += cost
          this.#peak = Math.max(this.#peak, this.#used)
          resolve(release)
        },
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(waiter)
      this.#drain()
    })
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#used + this.#queue[0]!.cost <= this.capacity) this.#queue.shift()!.grant()
  }
}
