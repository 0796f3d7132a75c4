// `npm run playground`: build this Vite app with the plugin on the embedded default and say what it saved.
// Pass --cold to empty the plugin's cache first; run it twice to see the second build served from cache.
import { readFile, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { build } from 'vite'

const root = fileURLToPath(new URL('.', import.meta.url))
const reportPath = join(root, 'dist', 'megaoptim-report.json')

if (process.argv.includes('--cold')) await rm(join(root, '.cache'), { recursive: true, force: true })

const started = performance.now()
await build({ root, logLevel: 'info' })
const seconds = ((performance.now() - started) / 1000).toFixed(1)

const { totals, references } = JSON.parse(await readFile(reportPath, 'utf8'))
const saved = totals.originalBytes - totals.optimizedBytes
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`
const percent = totals.originalBytes ? ((saved / totals.originalBytes) * 100).toFixed(1) : '0.0'
console.log(
  `\nplayground: ${totals.files} images, ${kib(totals.originalBytes)} → ${kib(totals.optimizedBytes)}, ` +
    `saved ${kib(saved)} (${percent}%) in ${seconds} s; ` +
    `${totals.cacheHits} from cache, ${totals.requests} API requests, ${totals.tokensUsed} tokens used.`,
)
console.log(
  `playground: ${totals.webpFiles} WebP siblings; ${references?.rewritten ?? 0} references rewritten ` +
    `(<picture> in HTML, image-set() in CSS, renamed files in JS, CSS, HTML and the manifests), ` +
    `${references?.renamed ?? 0} file names changed to follow their new bytes.`,
)
if (totals.requests === 0 && totals.cacheHits === totals.files) {
  console.log('playground: every image came from the cache: no API call, no token spent.')
} else {
  console.log('playground: run `npm run playground` again: the second build is served from the cache.')
}
