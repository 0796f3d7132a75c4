/**
 * A one-line progress bar on a TTY (stderr), redrawn at most ten times a second; silent elsewhere so logs
 * and pipes get only the summary.
 */
import type { CliIo } from './shared-client.ts'

export class ProgressBar {
  readonly #io: CliIo
  readonly #total: number
  readonly #enabled: boolean
  #done = 0
  #failed = 0
  #lastDraw = 0
  #drawn = false

  constructor(io: CliIo, total: number) {
    this.#io = io
    this.#total = total
    this.#enabled = io.stderr.isTTY === true && total > 0
  }

  tick(failed: boolean): void {
    this.#done++
    if (failed) this.#failed++
    const now = Date.now()
    if (now - this.#lastDraw >= 100 || this.#done === this.#total) this.#draw(now)
  }

  #draw(now: number): void {
    if (!this.#enabled) return
    this.#lastDraw = now
    const width = Math.max(10, Math.min(40, (this.#io.stderr.columns ?? 80) - 40))
    const filled = Math.round((this.#done / this.#total) * width)
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`
    const failed = this.#failed ? `, ${this.#failed} failed` : ''
    this.#io.stderr.write(`\r[${bar}] ${this.#done}/${this.#total} images${failed}\x1b[K`)
    this.#drawn = true
  }

  /** Leave the line so the summary starts on a fresh one. */
  finish(): void {
    if (this.#drawn) this.#io.stderr.write('\n')
    this.#drawn = false
  }
}
