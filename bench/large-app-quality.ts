/**
 * `npm run bench -- large-app-quality`: the pictures of the large app (`large-app.ts`: a real app's mix,
 * tuned on by nobody) through the engine at `intelligent`, each judged by butteraugli against its source:
 * a third set beside the engine bench's corpus and wide corpus. Data maps are skipped (they ship
 * losslessly), and so are the images the engine leaves as they are. Verdicts are cached by content
 * (`_butteraugli.ts`): the first run takes ~5 minutes on 2 cores, a repeat seconds.
 */
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { DEFAULT_IMAGE_PARAMS } from '../src/contract/params.ts'
import { ENGINE_VERSION, optimizeImage } from '../src/engine/index.ts'
import { ensureButteraugli, Judge } from './_butteraugli.ts'
import { largeApp, largeAppPictures } from './_large-app-fixture.ts'

/** The engine bench's bar for a picture: above it, damage shows on close inspection. */
const VISIBLE = 3.0

await ensureButteraugli()
const app = await largeApp()
const files = largeAppPictures(app.root)

const judge = new Judge(2)
const rows: { distance: number; line: string }[] = []
let input = 0
let output = 0
// One image at a time through the engine, two butteraugli runs at once (the judge's own limit).
const pending: Promise<void>[] = []
for (const file of files) {
  const bytes = readFileSync(file)
  const out = await optimizeImage(new Uint8Array(bytes), { ...DEFAULT_IMAGE_PARAMS, compression: 'intelligent' })
  if (out.settings === 'input') continue
  input += bytes.length
  output += out.data.length
  const name = relative(app.root, file)
  pending.push(
    judge.distance(bytes, out.data).then((distance) => {
      rows.push({ distance, line: `${distance.toFixed(2).padStart(6)}  ${out.settings.padEnd(24)} ${name}` })
    }),
  )
}
await Promise.all(pending)
judge.close()

rows.sort((a, b) => b.distance - a.distance)
console.log(`large app, ${ENGINE_VERSION}: ${rows.length} pictures optimized at intelligent (data maps and unchanged images skipped)`)
console.log(`butteraugli  settings                 image`)
for (const r of rows) console.log(r.line)
const mean = rows.reduce((s, r) => s + r.distance, 0) / rows.length
const above = rows.filter((r) => r.distance > VISIBLE)
console.log(`\nbytes ${input} -> ${output} (${((100 * output) / input).toFixed(1)} %); butteraugli mean ${mean.toFixed(3)}, max ${rows[0]?.distance.toFixed(2)}`)
console.log(`above ${VISIBLE.toFixed(1)}: ${above.length ? above.map((r) => r.line.trim()).join('; ') : 'none'}`)
