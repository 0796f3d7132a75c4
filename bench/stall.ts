/**
 * `npm run bench -- stall`: what an unresponsive API costs a real build. A loopback server accepts every
 * connection and never answers; the playground is built with Vite in a fresh process against it, with
 * every option at its default (an API key and that endpoint aside). Printed: the whole build's time
 * beside a build without the plugin and one against a healthy API (the embedded server: the plugin's own
 * work), how many originals were kept, and the lines the user saw while waiting. Target: at most 120 s (the default `timeout`) + the build's own time; it was 10 min 11 s.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const work = fileURLToPath(new URL('./.tmp/stall/', import.meta.url))
const child = fileURLToPath(new URL('./_rebuild-child.mjs', import.meta.url))

await rm(work, { recursive: true, force: true })
await mkdir(work, { recursive: true })

const sockets = new Set<Socket>()
let connections = 0
const silent = createServer((socket) => {
  connections++
  sockets.add(socket)
  socket.on('data', () => {})
  socket.on('error', () => {})
  socket.on('close', () => sockets.delete(socket))
})
await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
const { port } = silent.address() as { port: number }

async function timed(variant: string, env: Record<string, string> = {}) {
  const started = performance.now()
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', child, variant, join(work, variant), join(work, `${variant}-cache`)], {
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  })
  const wall = performance.now() - started
  const lines = `${stdout}\n${stderr}`.split('\n')
  const { ms } = JSON.parse(stdout.trim().split('\n').pop()!) as { ms: number }
  return { wall, build: ms, lines }
}

const plain = await timed('plain')
// The same build against a healthy API (the embedded server), for what the plugin's own work costs.
const cold = await timed('cold')
const stall = await timed('stall', { STALL_ENDPOINT: `http://127.0.0.1:${port}/v1` })
for (const socket of sockets) socket.destroy()
await new Promise((resolve) => silent.close(resolve))

const report = JSON.parse(await readFile(join(work, 'stall-report.json'), 'utf8')) as {
  files: Array<{ file: string; originalSize: number; optimizedSize: number; error: string | null }>
}
const kept = report.files.filter((f) => f.optimizedSize === f.originalSize).length
const waiting = stall.lines.filter((l) => /waiting on the API/.test(l))
const unresponsive = stall.lines.find((l) => /unresponsive/.test(l))
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`

console.log(`a loopback API that accepts connections and never answers (${connections} connections accepted)\n`)
console.log(`${'build'.padEnd(36)}${'command'.padStart(10)}${'build()'.padStart(10)}`)
console.log(`${'no plugin'.padEnd(36)}${s(plain.wall).padStart(10)}${s(plain.build).padStart(10)}`)
console.log(`${'megaoptim, healthy API (embedded)'.padEnd(36)}${s(cold.wall).padStart(10)}${s(cold.build).padStart(10)}`)
console.log(`${'megaoptim, API unresponsive'.padEnd(36)}${s(stall.wall).padStart(10)}${s(stall.build).padStart(10)}`)
console.log('')
console.log(`originals kept: ${kept} of ${report.files.length} images`)
console.log(`progress lines while waiting: ${waiting.length}`)
for (const line of waiting.slice(0, 3)) console.log(`  ${line.trim()}`)
if (waiting.length > 3) console.log(`  ... (${waiting.length - 3} more)`)
console.log(`summary: ${unresponsive?.trim() ?? '(no line names the API as unresponsive)'}`)
const target = 120_000 + cold.wall
console.log(
  `\nwhole build: ${s(stall.wall)}; over a healthy build: ${s(stall.wall - cold.wall)}, over no plugin: ${s(stall.wall - plain.wall)} ` +
    `(target <= 120 s + the build's own ${s(cold.wall)}: ${stall.wall <= target ? 'met' : 'NOT met'}; was 10 min 11 s)`,
)
