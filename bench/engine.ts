/**
 * `npm run bench -- engine`: the engine's levels on ../shared/corpus, judged by butteraugli (Debian's CLI),
 * side by side with (1) the fixed-quality recipe most plugins recommend (mozjpeg / libimagequant palette at
 * q = 40..95) and (2) vite-plugin-image-optimizer's defaults. Also the peak RSS on a 16-megapixel JPEG.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import { DEFAULT_LIMIT_INPUT_PIXELS, ENGINE_VERSION, optimizeImage, sniffFormat } from '../src/engine/index.ts'
import type { Compression, ImageFormat } from '../src/engine/index.ts'
import { ensureButteraugli, Judge } from './_butteraugli.ts'
import { keepSmaller, recipe } from './_recipe.ts'
import { SHARED_CORPUS, wideCorpus, type Half } from './_engine-corpus.ts'

const CORPUS = process.env.ENGINE_BENCH_CORPUS ?? SHARED_CORPUS
/** The wide sets get a shorter recipe curve: a 9 MP butteraugli comparison costs ~80 s. */
const RECIPE_QUALITIES = { corpus: [40, 50, 60, 70, 75, 80, 85, 90, 95], wide: [75, 90, 95] }
const TIME_REFERENCE_Q = 75
/** Alternating runs of `intelligent` and the reference encode per image; the medians are compared. */
const TIME_PASSES = Number(process.env.ENGINE_BENCH_TIME_PASSES ?? 3)
/** The bound stated in src/engine/README.md: both workers on 100 MP images at once. */
const MEMORY_BOUND_MB = 2300
/** Iterate on a subset: ENGINE_BENCH_ONLY=<regexp on names>, ENGINE_BENCH_SETS=corpus,tune,held. */
const ONLY = process.env.ENGINE_BENCH_ONLY ? new RegExp(process.env.ENGINE_BENCH_ONLY) : null
const SETS = new Set((process.env.ENGINE_BENCH_SETS ?? 'corpus,tune,held').split(','))

type SetName = 'corpus' | Half
const SET_TITLES: Record<SetName, string> = {
  corpus: 'skimage corpus (../shared/corpus; the limits were first calibrated on it)',
  tune: 'wide corpus, TUNE half (the changes of issue 7 were tuned on it)',
  held: 'wide corpus, HELD-BACK half (never tuned on: the targets are judged here)',
}
interface Image {
  name: string
  set: SetName
  kind: string
  format: ImageFormat
  input: Buffer
}
interface Outcome {
  data: Uint8Array
  /** CPU time (user + system, all of libvips' threads): the machine is shared, wall time is noise. */
  ms: number
  wallMs?: number
  settings?: string
  distance?: number
}

await ensureButteraugli()
sharp.cache(false)
const images: Image[] = []
if (SETS.has('corpus')) {
  for (const name of readdirSync(CORPUS).filter((f) => f !== 'truncated.jpg' && !f.endsWith('.md')).sort()) {
    images.push(load(name, 'corpus', '', join(CORPUS, name)))
  }
}
if (SETS.has('tune') || SETS.has('held')) {
  for (const w of await wideCorpus()) if (SETS.has(w.half)) images.push(load(w.name, w.half, w.kind, w.file))
}
function load(name: string, set: SetName, kind: string, file: string): Image {
  const input = readFileSync(file)
  const format = sniffFormat(input)
  if (!format) throw new Error(`${name}: not an image`)
  return { name, set, kind, format, input }
}
const selected = images.filter((i) => !ONLY || ONLY.test(i.name))
console.log(`corpus: ${CORPUS}; ${selected.length} images (truncated.jpg skipped), ${ENGINE_VERSION}`)
const setsPresent = (['corpus', 'tune', 'held'] as const).filter((s) => selected.some((i) => i.set === s))
const curveOf = (set: SetName): number[] => (set === 'corpus' ? RECIPE_QUALITIES.corpus : RECIPE_QUALITIES.wide)

/** Starts a measurement; calling the result gives CPU ms (the figure compared) and wall ms. */
function clock(): () => { ms: number; wallMs: number } {
  const wall = performance.now()
  const cpu = process.cpuUsage()
  return () => {
    const d = process.cpuUsage(cpu)
    return { ms: (d.user + d.system) / 1000, wallMs: performance.now() - wall }
  }
}

// ---- Phase 1: every encode, one at a time, timed (butteraugli runs later, so it steals no CPU here).
const params = { webp: false, cmykToRgb: true, keepExif: false, maxWidth: 0, maxHeight: 0 }
await optimizeImage(selected[0]!.input, { ...params, compression: 'intelligent' }) // warm-up: load sharp

/** variant → image name → outcome; a variant is judged only where it is listed. */
const variants = new Map<string, Map<string, Outcome>>()
const put = (variant: string, img: Image, o: Outcome): void => {
  if (!variants.has(variant)) variants.set(variant, new Map())
  variants.get(variant)!.set(img.name, o)
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
// The time target compares two CPU figures, and a shared machine's speed drifts over the minutes between
// them (one pass measured 2.18x, the next day 2.46x, with the same outputs): each image's `intelligent`
// run and its reference encode alternate, TIME_PASSES times, and each one's median counts.
const timed = new Map<string, Outcome[]>()
const timedRun = (variant: string, img: Image, o: Outcome): void => {
  const key = `${variant}\0${img.name}`
  timed.set(key, [...(timed.get(key) ?? []), o])
}
for (let pass = 0; pass < TIME_PASSES; pass++) {
  for (const img of selected) {
    const t = clock()
    const r = await optimizeImage(img.input, { ...params, compression: 'intelligent' })
    timedRun('intelligent', img, { data: r.data, ...t(), settings: r.settings })
    const tr = clock()
    timedRun(`recipe q${TIME_REFERENCE_Q}`, img, { data: keepSmaller(img.input, await recipe(img.input, img.format, TIME_REFERENCE_Q)), ...tr() })
  }
}
for (const variant of ['intelligent', `recipe q${TIME_REFERENCE_Q}`]) {
  for (const img of selected) {
    const runs = timed.get(`${variant}\0${img.name}`)!
    if (runs.some((o) => !Buffer.from(o.data).equals(Buffer.from(runs[0]!.data)))) console.log(`${img.name}: ${variant} differs between passes`)
    put(variant, img, { ...runs[0]!, ms: median(runs.map((o) => o.ms)) })
  }
}
for (const level of ['lossless', 'ultra'] as Compression[]) {
  for (const img of selected) {
    if (level === 'ultra' && img.set !== 'corpus') continue
    const t = clock()
    const r = await optimizeImage(img.input, { ...params, compression: level })
    put(level, img, { data: r.data, ...t(), settings: r.settings })
  }
}

for (const q of RECIPE_QUALITIES.corpus) {
  // The reference quality was encoded (and timed) beside `intelligent` above.
  if (q === TIME_REFERENCE_Q) continue
  for (const img of selected) {
    if (!curveOf(img.set).includes(q)) continue
    const t = clock()
    const out = await recipe(img.input, img.format, q)
    put(`recipe q${q}`, img, { data: keepSmaller(img.input, out), ...t() })
  }
}

// vite-plugin-image-optimizer 2.x `applySharp` with its DEFAULT_OPTIONS: the format from the extension,
// `{ quality: 100 }` for png/jpeg (png quality implies a palette in sharp), `{}` for gif,
// `{ lossless: true }` for webp; the original is kept when the output is not smaller (`skipWrite`).
const VIPO_DEFAULTS: Record<string, object> = {
  png: { quality: 100 },
  jpeg: { quality: 100 },
  jpg: { quality: 100 },
  gif: {},
  webp: { lossless: true },
}
for (const img of selected) {
  if (img.set !== 'corpus') continue
  const ext = img.name.split('.').pop()!.toLowerCase()
  const t = clock()
  const out = await sharp(img.input, { animated: ext === 'gif' })
    .toFormat(ext as 'png', VIPO_DEFAULTS[ext])
    .toBuffer()
  put('vite-plugin-image-optimizer', img, { data: keepSmaller(img.input, out), ...t() })
}

// ---- Phase 2: the judge, 2 butteraugli processes at a time (verdicts cached by content).
const judge = new Judge(2)
const judging: Promise<void>[] = []
const byName = new Map(selected.map((i) => [i.name, i]))
for (const [name, outcomes] of variants) {
  if (name === 'lossless') continue
  for (const [imgName, o] of outcomes) {
    const img = byName.get(imgName)!
    if (o.data === img.input) {
      o.distance = 0
      continue
    }
    judging.push(
      judge.distance(img.input, o.data).then((d) => {
        o.distance = d
      }),
    )
  }
}
const judgeStart = performance.now()
await Promise.all(judging)
judge.close()

// ---- Lossless: pixel-identical (decoded in canonical RGBA) and never larger.
async function pixels(bytes: Uint8Array): Promise<Buffer> {
  return sharp(bytes, { animated: true, limitInputPixels: false }).rotate().toColourspace('srgb').ensureAlpha().raw().toBuffer()
}
const losslessProblems: string[] = []
for (const [imgName, o] of variants.get('lossless')!) {
  const img = byName.get(imgName)!
  if (o.data.length > img.input.length) losslessProblems.push(`${img.name}: larger (${o.data.length} > ${img.input.length})`)
  const [a, b] = await Promise.all([pixels(img.input), pixels(o.data)])
  if (!a.equals(b)) losslessProblems.push(`${img.name}: pixels differ`)
  o.distance = 0
}

// ---- Report, per set.
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
const fmt = (n: number, d = 0): string => n.toFixed(d).padStart(9)
interface Summary {
  bytes: number
  mean: number
  max: number
  ms: number
}
function summarize(variant: string, imgs: Image[]): Summary | null {
  const outcomes = imgs.map((i) => variants.get(variant)?.get(i.name))
  if (outcomes.some((o) => !o)) return null
  const d = outcomes.map((o) => o!.distance ?? NaN)
  return {
    bytes: sum(outcomes.map((o) => o!.data.length)),
    mean: sum(d) / d.length,
    max: Math.max(...d),
    ms: sum(outcomes.map((o) => o!.ms)),
  }
}
console.log(`\nbutteraugli took ${((performance.now() - judgeStart) / 1000).toFixed(0)} s (cached verdicts are free)`)
const timeLines: string[] = []
for (const set of setsPresent) {
  const imgs = selected.filter((i) => i.set === set)
  const totalInput = sum(imgs.map((i) => i.input.length))
  console.log(`\n=== ${SET_TITLES[set]}: ${imgs.length} images, ${totalInput} bytes`)
  if (set !== 'corpus') for (const i of imgs) console.log(`  ${i.name.padEnd(28)} ${i.kind}`)
  console.log(`${'variant'.padEnd(30)}${'bytes'.padStart(9)}${'% input'.padStart(9)}${'mean BA'.padStart(9)}${'max BA'.padStart(9)}${'cpu ms'.padStart(9)}`)
  const summaries = new Map<string, Summary>()
  for (const name of variants.keys()) {
    const s = summarize(name, imgs)
    if (!s) continue
    summaries.set(name, s)
    console.log(`${name.padEnd(30)}${fmt(s.bytes)}${fmt((100 * s.bytes) / totalInput, 1)}${fmt(s.mean, 3)}${fmt(s.max, 3)}${fmt(s.ms)}`)
  }

  console.log('\nper image (bytes / butteraugli / settings; time intelligent vs recipe q75):')
  const show = set === 'corpus' ? ['intelligent', 'ultra', 'recipe q75', 'recipe q90'] : ['intelligent', 'recipe q75', 'recipe q90']
  console.log(`${'image'.padEnd(28)}${'input'.padStart(9)}${show.map((s) => s.padStart(34)).join('')}${'ms'.padStart(13)}`)
  for (const img of imgs) {
    const cells = show.map((v) => {
      const o = variants.get(v)!.get(img.name)!
      return `${o.data.length}/${(o.distance ?? NaN).toFixed(2)}${o.settings ? ` ${o.settings}` : ''}`.padStart(34)
    })
    const ms = `${variants.get('intelligent')!.get(img.name)!.ms.toFixed(0)}/${variants.get(`recipe q${TIME_REFERENCE_Q}`)!.get(img.name)!.ms.toFixed(0)}`
    console.log(`${img.name.padEnd(28)}${String(img.input.length).padStart(9)}${cells.join('')}${ms.padStart(13)}`)
  }

  const curve = curveOf(set)
    .map((q) => ({ q, ...summaries.get(`recipe q${q}`)! }))
    .sort((a, b) => a.mean - b.mean)
  /** Recipe bytes at a given mean distance, linear between the two curve points around it. */
  const recipeBytesAt = (mean: number): { bytes: number; note: string } => {
    const first = curve[0]!
    const last = curve[curve.length - 1]!
    if (mean <= first.mean) {
      return { bytes: first.bytes, note: `below the curve's best mean ${first.mean.toFixed(3)} (q${first.q}): compared with q${first.q}, which flatters the recipe` }
    }
    if (mean >= last.mean) return { bytes: last.bytes, note: `above the curve's worst mean (q${last.q})` }
    for (let k = 0; k + 1 < curve.length; k++) {
      const a = curve[k]!
      const b = curve[k + 1]!
      if (mean >= a.mean && mean <= b.mean) {
        const t = b.mean === a.mean ? 0 : (mean - a.mean) / (b.mean - a.mean)
        return { bytes: a.bytes + t * (b.bytes - a.bytes), note: `between q${a.q} and q${b.q}` }
      }
    }
    throw new Error('unreachable')
  }

  console.log(`\ntargets (${set}):`)
  const intel = summaries.get('intelligent')!
  const at = recipeBytesAt(intel.mean)
  const ratio = intel.bytes / at.bytes
  console.log(
    `intelligent bytes / recipe bytes at the same mean distance (${intel.mean.toFixed(3)}): ` +
      `${intel.bytes} / ${at.bytes.toFixed(0)} = ${ratio.toFixed(3)} (${at.note})  target <= 0.85: ${ratio <= 0.85 ? 'MET' : 'NOT MET'}`,
  )
  const over = imgs.filter((i) => (variants.get('intelligent')!.get(i.name)!.distance ?? 0) > 3)
  console.log(
    `intelligent images with butteraugli > 3.0: ${over.length === 0 ? 'none' : over.map((i) => `${i.name} ${variants.get('intelligent')!.get(i.name)!.distance!.toFixed(2)}`).join(', ')}  target none: ${over.length === 0 ? 'MET' : 'NOT MET'}`,
  )
  const refMs = summaries.get(`recipe q${TIME_REFERENCE_Q}`)!.ms
  const line = `intelligent CPU time / one fixed-quality encode (recipe q${TIME_REFERENCE_Q}), ${set}: ${intel.ms.toFixed(0)} ms / ${refMs.toFixed(0)} ms = ${(intel.ms / refMs).toFixed(2)}x`
  console.log(line)
  timeLines.push(line)
}

const all = (variant: string): number => sum(selected.map((i) => variants.get(variant)!.get(i.name)!.ms))
const overall = all('intelligent') / all(`recipe q${TIME_REFERENCE_Q}`)
console.log(
  `\nintelligent CPU time / one fixed-quality encode (recipe q${TIME_REFERENCE_Q}), all ${selected.length} images: ` +
    `${all('intelligent').toFixed(0)} ms / ${all(`recipe q${TIME_REFERENCE_Q}`).toFixed(0)} ms = ${overall.toFixed(2)}x  target <= 2x: ${overall <= 2 ? 'MET' : 'NOT MET'}`,
)
const lossless = sum([...variants.get('lossless')!.values()].map((o) => o.data.length))
console.log(
  `lossless: ${lossless} bytes, pixel-identical and never larger: ` +
    (losslessProblems.length === 0 ? 'MET' : `NOT MET (${losslessProblems.join('; ')})`),
)

// ---- Peak memory with both workers holding the largest image the engine accepts (DEFAULT_LIMIT_INPUT_PIXELS):
// two 100 MP JPEGs at once, in a child process so the figure is those optimizations' own.
if (process.env.ENGINE_BENCH_MEMORY === '0') process.exit(0)
const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'engine-bench-mem-'))
try {
  const side = Math.floor(Math.sqrt(DEFAULT_LIMIT_INPUT_PIXELS))
  const photo = images.find((i) => i.name === 'rocket.jpg') ?? images.find((i) => i.format === 'jpeg')!
  const jpeg = join(dir, 'big.jpg')
  writeFileSync(jpeg, await sharp(photo.input).resize(side, side, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer())
  const child = fileURLToPath(new URL('./_engine-memory.ts', import.meta.url))
  for (const level of ['intelligent', 'lossless'] as const) {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', child, level, jpeg, jpeg], { maxBuffer: 1 << 20 })
    const m = JSON.parse(stdout.trim().split('\n').pop()!) as { peakMB: number; baselineMB: number; ms: number; settings: string[] }
    console.log(
      `peak RSS, ${level}, two ${side}x${side} JPEGs at once (${(DEFAULT_LIMIT_INPUT_PIXELS / 1e6).toFixed(0)} MP each, the engine's limit): ` +
        `${m.peakMB.toFixed(0)} MB (Node + sharp loaded: ${m.baselineMB.toFixed(0)} MB), ${(m.ms / 1000).toFixed(0)} s wall → ${m.settings.join(', ')}` +
        `  bound ${MEMORY_BOUND_MB} MB: ${m.peakMB <= MEMORY_BOUND_MB ? 'HELD' : 'NOT HELD'}`,
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
