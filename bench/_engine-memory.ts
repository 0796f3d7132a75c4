/**
 * Child process of bench/engine.ts: optimizes one file and prints the RSS high-water mark as JSON, so the
 * figure is this optimization's alone (plus Node and sharp themselves, reported as `baselineMB`).
 */
import { readFileSync } from 'node:fs'
import { optimizeImage } from '../src/engine/index.ts'

const [file, compression = 'intelligent'] = process.argv.slice(2)
if (!file) throw new Error('usage: _engine-memory.ts FILE [LEVEL]')
const input = readFileSync(file)
await import('sharp')
const baselineMB = process.resourceUsage().maxRSS / 1024
const started = performance.now()
const result = await optimizeImage(input, {
  compression: compression as 'intelligent',
  webp: false,
  cmykToRgb: true,
  keepExif: false,
  maxWidth: 0,
  maxHeight: 0,
})
const ms = performance.now() - started
console.log(
  JSON.stringify({
    baselineMB,
    peakMB: process.resourceUsage().maxRSS / 1024,
    ms,
    inputBytes: input.length,
    outputBytes: result.data.length,
    width: result.width,
    height: result.height,
  }),
)
