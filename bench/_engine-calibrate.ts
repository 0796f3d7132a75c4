/**
 * Calibrates src/engine/metric.ts against butteraugli: encodes every corpus image at many qualities, asks
 * butteraugli once (cached in $TMPDIR/engine-calibration.json), then for each metric setting and threshold
 * simulates the search ("smallest encode whose metric passes, else lossless") and reports bytes and the
 * worst butteraugli distance that would ship. Run: npx tsx bench/_engine-calibrate.ts
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { activityMap, darkenLightness, labDistance, METRIC_PARAMS, toLab, type LabImage, type MetricParams } from '../src/engine/metric.ts'
import { encodeResidualPng, quantizeResiduals } from '../src/engine/png-residual.ts'
import { sniffFormat } from '../src/contract/formats.ts'
import { Judge } from './_butteraugli.ts'
import { SHARED_CORPUS } from './_engine-corpus.ts'

// Another set of images (a directory) with CALIBRATE_CORPUS.
const CORPUS = process.env.CALIBRATE_CORPUS ?? SHARED_CORPUS
const CACHE = join(tmpdir(), 'engine-calibration.json')
const JPEG_Q = [30, 40, 50, 60, 65, 70, 75, 80, 85, 88, 90, 92, 95]
const PNG_Q = [20, 30, 40, 50, 60, 70, 80, 85, 90, 95, 100]
const RESIDUAL_STEPS = [2, 4, 6, 8, 10, 12, 16]

interface Variant {
  label: string
  bytes: number
  ba: number
  lab: LabImage[]
}
interface Item {
  name: string
  losslessBytes: number
  refs: { lab: LabImage; activity: Map<string, Float32Array> }[]
  variants: Variant[]
}

const cache: Record<string, number> = existsSync(CACHE) ? JSON.parse(readFileSync(CACHE, 'utf8')) : {}
const judge = new Judge(2)
const items: Item[] = []
for (const name of readdirSync(CORPUS).sort()) {
  const input = readFileSync(join(CORPUS, name))
  const format = sniffFormat(input)
  if (name === 'truncated.jpg' || (format !== 'jpeg' && format !== 'png')) continue
  const meta = await sharp(input).metadata()
  const bgs = meta.hasAlpha ? ['#ffffff', '#000000'] : [null]
  const lab = async (bytes: Uint8Array): Promise<LabImage[]> => Promise.all(bgs.map((bg) => toLab(sharp(bytes), bg, null, 1)))
  const encodes =
    format === 'jpeg'
      ? JPEG_Q.map((q) => ({ label: `jpeg q${q}`, run: () => sharp(input).jpeg({ quality: q, mozjpeg: true }).toBuffer() }))
      : [
          ...PNG_Q.map((q) => ({ label: `palette q${q}`, run: () => sharp(input).png({ palette: true, quality: q, effort: 7 }).toBuffer() })),
          ...RESIDUAL_STEPS.map((step) => ({
            label: `residual s${step}`,
            run: async () => {
              const { data, info } = await sharp(input).raw().toBuffer({ resolveWithObject: true })
              const r = quantizeResiduals(data, info.width, info.height, info.channels, info.channels === 2 || info.channels === 4, step)
              return Buffer.from(await encodeResidualPng(r))
            },
          })),
        ]
  const variants: Variant[] = []
  const pending: Promise<void>[] = []
  for (const e of encodes) {
    const out = await e.run()
    const v: Variant = { label: e.label, bytes: Math.min(out.length, input.length), ba: cache[`${name}|${e.label}`] ?? NaN, lab: await lab(out) }
    variants.push(v)
    if (Number.isNaN(v.ba)) {
      pending.push(
        judge.distance(input, out).then((d) => {
          v.ba = d
          cache[`${name}|${e.label}`] = d
        }),
      )
    }
  }
  await Promise.all(pending)
  const refLab = await lab(input)
  const lossless = format === 'jpeg' ? input.length : Math.min(input.length, (await sharp(input).png({ compressionLevel: 9, adaptiveFiltering: true, palette: false }).toBuffer()).length)
  items.push({ name, losslessBytes: lossless, refs: refLab.map((l) => ({ lab: l, activity: new Map() })), variants })
  writeFileSync(CACHE, JSON.stringify(cache))
  process.stderr.write('.')
}
judge.close()
console.log()

/**
 * A study, not an engine setting: the activity raised to `maskGamma` before it masks (below 1, masking grows
 * more slowly than the reference's contrast, as butteraugli's does), so a loud edge hides less of its own
 * damage than the plain metric lets it.
 */
type StudyParams = MetricParams & { maskGamma?: number }

function metric(item: Item, v: Variant, p: StudyParams): number {
  let worst = 0
  const g = p.darkGamma ?? 1
  const mg = p.maskGamma ?? 1
  item.refs.forEach((r, i) => {
    const key = `${p.maskRadius}|${g}|${mg}`
    let act = r.activity.get(key)
    const refLab = darkenLightness(r.lab, g)
    if (!act) {
      act = activityMap(refLab, p.maskRadius)
      if (mg !== 1) for (let k = 0; k < act.length; k++) act[k] = act[k]! ** mg
      r.activity.set(key, act)
    }
    worst = Math.max(worst, labDistance({ lab: refLab, activity: act }, darkenLightness(v.lab[i]!, g), p))
  })
  return worst
}

// The engine never tries palettes below this quality (CALIBRATE_MIN_PALETTE_Q): drop them from the simulation.
const MIN_PALETTE_Q = Number(process.env.CALIBRATE_MIN_PALETTE_Q ?? 0)
for (const it of items) it.variants = it.variants.filter((v) => !v.label.startsWith('palette') || Number(v.label.slice(9)) >= MIN_PALETTE_Q)
const family = (v: Variant): string => v.label.split(' ')[0]!
const LIMIT = Number(process.env.CALIBRATE_MAX) || 2.9

/** Simulate the search with one threshold per encoder family: the smallest passing variant, else lossless. */
function simulate(scores: number[][], t: Record<string, number>): { bytes: number; maxBa: number; meanBa: number; picks: string[] } {
  let bytes = 0
  let maxBa = 0
  let sumBa = 0
  const picks: string[] = []
  items.forEach((item, i) => {
    let best: Variant | null = null
    for (const [j, v] of item.variants.entries()) {
      if (scores[i]![j]! <= (t[family(v)] ?? -1) && (!best || v.bytes < best.bytes)) best = v
    }
    const b = best as Variant | null
    if (b && b.bytes < item.losslessBytes) {
      bytes += b.bytes
      maxBa = Math.max(maxBa, b.ba)
      sumBa += b.ba
      picks.push(`${item.name}:${b.label}:${b.ba.toFixed(2)}:m${scores[i]![item.variants.indexOf(b)]!.toFixed(2)}`)
    } else {
      bytes += item.losslessBytes
      picks.push(`${item.name}:lossless`)
    }
  })
  return { bytes, maxBa, meanBa: sumBa / items.length, picks }
}

const baseline = items.map((it) => it.variants.map((v) => v.ba))
for (const limit of [3.0, LIMIT, 2.5]) {
  const o = simulate(baseline, { jpeg: limit, palette: limit, residual: limit })
  console.log(`oracle (butteraugli itself, <= ${limit}): ${o.bytes} bytes, mean ${o.meanBa.toFixed(3)}`)
  if (limit === LIMIT) console.log('  ' + o.picks.join(' '))
}

const axes = JSON.parse(
  process.env.CALIBRATE_GRID ??
    '{"chromaWeight":[0.5],"errorRadius":[1,3],"maskRadius":[3,8],"maskFloor":[0.5,2],"maskSlope":[0.3,1.5]}',
) as Record<keyof StudyParams, number[] | undefined> & Record<'chromaWeight' | 'errorRadius' | 'maskRadius' | 'maskFloor' | 'maskSlope', number[]>
const grid: StudyParams[] = []
for (const chromaWeight of axes.chromaWeight)
  for (const errorRadius of axes.errorRadius)
    for (const maskRadius of axes.maskRadius)
      for (const maskFloor of axes.maskFloor)
        for (const maskSlope of axes.maskSlope)
          for (const poolTop of axes.poolTop ?? [0])
            for (const darkGamma of axes.darkGamma ?? [1])
              for (const bandRadius of axes.bandRadius ?? [8])
                for (const bandWeight of axes.bandWeight ?? [0])
                  for (const chromaScale of axes.chromaScale ?? [0])
                    for (const maskGamma of axes.maskGamma ?? [1])
                      grid.push({ chromaWeight, errorRadius, maskRadius, maskFloor, maskSlope, scale: 1, poolTop, darkGamma, bandRadius, bandWeight, chromaScale, chromaRadius: METRIC_PARAMS.chromaRadius, maskGamma })

const results: { p: StudyParams; t: Record<string, number>; bytes: number; maxBa: number; meanBa: number; picks: string[] }[] = []
for (const p of grid) {
  const scores = items.map((it) => it.variants.map((v) => metric(it, v, p)))
  // Per family, the safe threshold: just below the lowest score of any variant butteraugli says is too far.
  const t: Record<string, number> = {}
  items.forEach((it, i) =>
    it.variants.forEach((v, j) => {
      const f = family(v)
      t[f] ??= Infinity
      if (v.ba > LIMIT) t[f] = Math.min(t[f]!, scores[i]![j]! * 0.999)
    }),
  )
  // Fixed thresholds instead (CALIBRATE_T='{"jpeg":0.8,...}'): what the engine's own limits would ship.
  if (process.env.CALIBRATE_T) Object.assign(t, JSON.parse(process.env.CALIBRATE_T) as Record<string, number>)
  if (process.env.CALIBRATE_DUMP) {
    const rows = items.flatMap((it, i) => it.variants.map((v, j) => ({ f: family(v), m: scores[i]![j]!, ba: v.ba, what: `${it.name} ${v.label} ${v.bytes}` })))
    for (const f of ['jpeg', 'palette', 'residual']) {
      console.log(`-- ${f}`)
      for (const r of rows.filter((r) => r.f === f).sort((a, b) => a.m - b.m)) if ((process.env.CALIBRATE_DUMP === 'all' || r.ba > LIMIT) && r.m < 2 * (t[f] ?? 1)) console.log(`${r.m.toFixed(3)} ${r.ba.toFixed(2)} ${r.ba > LIMIT ? 'BAD ' : ''}${r.what}`)
    }
  }
  const s = simulate(scores, t)
  results.push({ p, t, ...s })
  console.log(`  ${s.bytes} mean ${s.meanBa.toFixed(3)} max ${s.maxBa.toFixed(2)} t=${JSON.stringify(t, (_k, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(3)) : v))} ${JSON.stringify(p)}`)
}
results.sort((a, b) => a.bytes - b.bytes)
console.log('best:')
for (const r of results.slice(0, 3)) console.log(`${r.bytes} ${JSON.stringify(r.t)} ${JSON.stringify(r.p)}\n  ${r.picks.join(' ')}`)
