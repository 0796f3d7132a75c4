/**
 * Study: the palette with and without Floyd–Steinberg dithering (src/engine/README.md, "Known limits").
 * For every PNG in <dir> (default ../shared/corpus), at each palette quality the search uses: the bytes
 * and the engine's metric on the whole image, dithered (what the engine ships) and not; then the lowest
 * quality within the palette limit for each, judged by butteraugli.
 * Run: npx tsx bench/_palette-dither.ts [dir]
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import sharp, { type Sharp } from 'sharp'
import { applyEncoder } from '../src/engine/encode.ts'
import { DISTANCE_LIMITS, PALETTE_QUALITIES, paletteAt } from '../src/engine/lossy.ts'
import { distanceTo, makeReference } from '../src/engine/metric.ts'
import { ensureButteraugli, Judge } from './_butteraugli.ts'
import { SHARED_CORPUS } from './_engine-corpus.ts'

const LIMIT = DISTANCE_LIMITS.intelligent.palette
const dir = process.argv[2] ?? SHARED_CORPUS

await ensureButteraugli()
sharp.cache(false)
const judge = new Judge(2)
const total = { 1: { bytes: 0, worst: 0 }, 0: { bytes: 0, worst: 0 } }
console.log(`palette limit ${LIMIT}; per image: pick (quality bytes metric butteraugli), dithered | undithered`)
for (const name of readdirSync(dir).filter((f) => f.endsWith('.png')).sort()) {
  const input = readFileSync(join(dir, name))
  const { data, info } = await sharp(input).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true })
  const raw = (): Sharp => sharp(data, { raw: info })
  const ref = await makeReference(raw, info, info.channels === 4)
  const cells: string[] = []
  for (const dither of [1, 0] as const) {
    let pick: { q: number; out: Buffer; d: number } | null = null
    for (const q of PALETTE_QUALITIES.steps) {
      const out = await applyEncoder(raw(), { ...paletteAt(q), dither }).toBuffer()
      const d = await distanceTo(ref, () => sharp(out))
      if (d <= LIMIT) {
        pick = { q, out, d }
        break
      }
    }
    if (!pick) {
      cells.push('none'.padEnd(30))
      continue
    }
    const ba = await judge.distance(input, pick.out)
    total[dither].bytes += pick.out.length
    total[dither].worst = Math.max(total[dither].worst, ba)
    cells.push(`q${pick.q} ${pick.out.length} ${pick.d.toFixed(2)} ${ba.toFixed(2)}`.padEnd(30))
  }
  console.log(`${name.padEnd(24)} ${cells.join(' | ')}`)
}
judge.close()
console.log(`dithered:   ${total[1].bytes} bytes, worst butteraugli ${total[1].worst.toFixed(2)}`)
console.log(`undithered: ${total[0].bytes} bytes, worst butteraugli ${total[0].worst.toFixed(2)}`)
