/**
 * Child process of bench/engine.ts: optimizes the given files at once (as the server's two workers would)
 * and prints the RSS high-water mark as JSON, so the figure is these optimizations' alone (plus Node and
 * sharp themselves, reported as `baselineMB`).
 */
import { readFileSync } from 'node:fs'
import { optimizeImage } from '../src/engine/index.ts'

const [compression = 'intelligent', ...files] = process.argv.slice(2)
if (files.length === 0) throw new Error('usage: _engine-memory.ts LEVEL FILE...')
const inputs = files.map((f) => readFileSync(f))
await import('sharp')
const baselineMB = process.resourceUsage().maxRSS / 1024
const started = performance.now()
const results = await Promise.all(
  inputs.map((input) =>
    optimizeImage(input, {
      compression: compression as 'intelligent',
      webp: false,
      cmykToRgb: true,
      keepExif: false,
      maxWidth: 0,
      maxHeight: 0,
    }),
  ),
)
const ms = performance.now() - started
console.log(
  JSON.stringify({
    baselineMB,
    peakMB: process.resourceUsage().maxRSS / 1024,
    ms,
    inputBytes: inputs.map((i) => i.length),
    outputBytes: results.map((r) => r.data.length),
    settings: results.map((r) => r.settings),
    width: results[0]!.width,
    height: results[0]!.height,
  }),
)
