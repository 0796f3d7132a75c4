/**
 * The independent judge: Debian's `butteraugli` CLI on PNG renderings of the reference and the candidate.
 * Transparent images are judged over white and over black (the worse counts), so alpha damage shows.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import sharp from 'sharp'

const run = promisify(execFile)

export async function ensureButteraugli(): Promise<void> {
  try {
    await run('butteraugli', [], { timeout: 10_000 })
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string }
    if (e.code === 'ENOENT') {
      throw new Error('butteraugli is not installed: run `apt-get update && apt-get install -y butteraugli`.')
    }
    // It prints its usage and exits non-zero without arguments: installed.
  }
}

/**
 * Verdicts by content: sha256(reference) + sha256(candidate) → distance, one JSON line each, outside the
 * repository. A 9-megapixel comparison takes ~80 s and 1.5 GB, so an unchanged encode is never judged twice.
 */
const CACHE_FILE = process.env.BUTTERAUGLI_CACHE ?? join(homedir(), '.cache', 'megaoptim-bench', 'butteraugli.jsonl')

function loadCache(): Map<string, number> {
  const cache = new Map<string, number>()
  if (!existsSync(CACHE_FILE)) return cache
  for (const line of readFileSync(CACHE_FILE, 'utf8').split('\n')) {
    if (!line) continue
    const { key, distance } = JSON.parse(line) as { key: string; distance: number }
    cache.set(key, distance)
  }
  return cache
}

const hash = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex').slice(0, 32)

export class Judge {
  private readonly cache = loadCache()
  private readonly dir = mkdtempSync(join(tmpdir(), 'engine-bench-'))
  private counter = 0
  private running = 0
  private readonly waiting: (() => void)[] = []

  constructor(private readonly parallel = 2) {}

  /** Max butteraugli distance between two encoded images of the same size (all frames of an animation). */
  async distance(reference: Uint8Array, candidate: Uint8Array): Promise<number> {
    const key = `${hash(reference)}:${hash(candidate)}`
    const known = this.cache.get(key)
    if (known !== undefined) return known
    const distance = await this.measure(reference, candidate)
    this.cache.set(key, distance)
    mkdirSync(dirname(CACHE_FILE), { recursive: true })
    appendFileSync(CACHE_FILE, JSON.stringify({ key, distance }) + '\n')
    return distance
  }

  private async measure(reference: Uint8Array, candidate: Uint8Array): Promise<number> {
    const refMeta = await sharp(reference, { animated: true }).metadata()
    const backgrounds = refMeta.hasAlpha ? ['#ffffff', '#000000'] : [null]
    let worst = 0
    for (const bg of backgrounds) {
      const [a, b] = await Promise.all([this.render(reference, bg), this.render(candidate, bg)])
      worst = Math.max(worst, await this.compare(a, b))
    }
    return worst
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }

  private async render(bytes: Uint8Array, background: string | null): Promise<string> {
    const file = join(this.dir, `${this.counter++}.png`)
    let p = sharp(bytes, { animated: true, limitInputPixels: false })
    if (background) p = p.flatten({ background })
    // Stacked frames: an animation is judged as one tall image.
    const png = await p.toColourspace('srgb').png({ compressionLevel: 1 }).toBuffer()
    writeFileSync(file, png)
    return file
  }

  private async compare(a: string, b: string): Promise<number> {
    while (this.running >= this.parallel) await new Promise<void>((r) => this.waiting.push(r))
    this.running++
    try {
      const { stdout } = await run('butteraugli', [a, b], { timeout: 3_600_000 })
      const value = Number.parseFloat(stdout.trim())
      if (!Number.isFinite(value)) throw new Error(`butteraugli printed ${JSON.stringify(stdout)}`)
      return value
    } finally {
      this.running--
      rmSync(a, { force: true })
      rmSync(b, { force: true })
      this.waiting.shift()?.()
    }
  }
}
