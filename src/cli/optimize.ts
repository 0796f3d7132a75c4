/**
 * `megaoptim optimize <dir>`: optimize every JPEG, PNG and GIF under a folder through the API client.
 * Nothing is lost: whatever fails keeps its original bytes in the output, every write is a temp file
 * renamed into place, and the exit code is non-zero only when something failed.
 */
import { readdir, stat } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import { parseArgs } from 'node:util'
import { MegaOptimClient } from '../client/client.ts'
import type { OptimizeOutcome, OptimizeParams } from '../client/types.ts'
import { COMPRESSIONS, DEFAULT_IMAGE_PARAMS, isCompression } from '../contract/params.ts'
import type { EmbeddedServer } from '../server/types.ts'
import { copyFileAtomic, writeFileAtomic } from '../core/atomic.ts'
import { type CliIo, UsageError, formatBytes, formatTokens, noKeyMessage, processIo, wholeArg } from './shared-client.ts'
import { ProgressBar } from './shared-progress.ts'

const HELP = `Usage: megaoptim optimize <dir> (--out <dir> | --in-place) [options]

Optimize every JPEG, PNG and GIF under <dir> (recursively) with the MegaOptim API.
The API key is read from MEGAOPTIM_API_KEY. Without a key and without --endpoint, the images are
optimized locally by the embedded compatible server (needs sharp).

Options:
  --out <dir>              write the results to this folder, mirroring the tree
  --in-place               overwrite the originals (only those that got smaller)
  --endpoint <url>         API base URL (default https://api.megaoptim.com/v1)
  --compression <level>    intelligent (default), ultra or lossless
  --webp                   also write a WebP version next to each image (name.ext.webp)
  --keep-exif              keep EXIF/IPTC metadata
  --no-cmyk-to-rgb         keep CMYK images in CMYK
  --max-width <n>          fit inside this width (never enlarges)
  --max-height <n>         fit inside this height (never enlarges)
  --rate-limit <n>         requests per minute per endpoint (default 120, the API's limit)
  --report <file.json>     write a JSON report of every file
  -h, --help               show this help

Exit code: 0 when nothing failed, 1 when some image failed (its original is kept), 2 on a usage error.`

const IMAGE = /\.(jpe?g|png|gif)$/i
/**
 * Inputs per client call: bounds the optimized bytes held in memory, and what an interrupt (Ctrl-C) can
 * discard of results already paid for; 25 is still five full batches of 5 in flight.
 */
const CHUNK = 25

interface Args {
  dir: string
  out: string | null
  endpoint: string | undefined
  params: OptimizeParams
  rateLimit: number | undefined
  report: string | undefined
}

interface FileReport {
  file: string
  status: OptimizeOutcome['status']
  originalSize: number
  outputSize: number
  webpSize: number | null
  /** Why the API saw no gain, when it said. */
  reason?: string
  error?: { code: string; message: string }
}

export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let args: Args
  try {
    const parsed = parseCli(argv)
    if (parsed === 'help') {
      io.stdout.write(`${HELP}\n`)
      return 0
    }
    args = parsed
    const info = await stat(args.dir).catch(() => null)
    if (!info?.isDirectory()) throw new UsageError(`${args.dir} is not a folder`)
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error
    io.stderr.write(`megaoptim optimize: ${error.message}\nRun 'megaoptim optimize --help' for the options.\n`)
    return 2
  }

  const connection = await connect(args, io)
  if (typeof connection === 'number') return connection

  const files = await findImages(args.dir, args.out)
  if (files.length === 0) {
    io.stdout.write(`megaoptim: no JPEG, PNG or GIF under ${args.dir}\n`)
    await connection.close()
    return 0
  }

  const progress = new ProgressBar(io, files.length)
  let client: MegaOptimClient
  try {
    client = new MegaOptimClient({
      apiKey: connection.apiKey,
      endpoint: connection.endpoint,
      rateLimit: args.rateLimit ?? connection.rateLimit,
      onEvent: (e) => {
        if (e.type === 'done') progress.tick(e.outcome === 'failed')
      },
    })
  } catch (error) {
    await connection.close()
    if (!(error instanceof TypeError)) throw error
    io.stderr.write(`megaoptim optimize: ${error.message}\n`)
    return 2
  }
  const controller = new AbortController()
  const onSigint = () => controller.abort(new Error('interrupted'))
  process.once('SIGINT', onSigint)
  const reports: FileReport[] = []
  let interrupted = false
  try {
    for (let i = 0; i < files.length; i += CHUNK) {
      const chunk = files.slice(i, i + CHUNK)
      const outcomes = await client.optimize(
        chunk.map((rel) => ({ path: join(args.dir, rel), name: rel.split(sep).join('/') })),
        args.params,
        { signal: controller.signal },
      )
      for (const [n, outcome] of outcomes.entries()) reports.push(await writeOutcome(args, chunk[n]!, outcome))
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error
    interrupted = true
  } finally {
    process.removeListener('SIGINT', onSigint)
    progress.finish()
    await client.close()
    await connection.close()
  }

  const stats = client.stats
  const failed = reports.filter((r) => r.status === 'failed')
  const before = reports.reduce((s, r) => s + r.originalSize, 0)
  const after = reports.reduce((s, r) => s + r.outputSize, 0)
  const webps = reports.filter((r) => r.webpSize !== null)
  const summary = {
    files: reports.length,
    optimized: reports.filter((r) => r.status === 'optimized').length,
    noGain: reports.filter((r) => r.status === 'no-gain').length,
    failed: failed.length,
    bytesBefore: before,
    bytesAfter: after,
    webpFiles: webps.length,
    webpBytes: webps.reduce((s, r) => s + (r.webpSize ?? 0), 0),
    requests: stats.requests,
    requestsByEndpoint: stats.byEndpoint,
    retries: stats.retries,
    rateLimited: stats.rateLimited,
    tokensLeft: stats.tokensLeft,
  }
  const lines = [
    `megaoptim: ${summary.files} files: ${summary.optimized} optimized, ${summary.noGain} without gain, ${summary.failed} failed${interrupted ? ` (interrupted: ${files.length - reports.length} not processed${args.out ? ' and not copied to the output' : ', left as they were'})` : ''}`,
    `  bytes:    ${formatBytes(before)} -> ${formatBytes(after)} (${before ? (((after - before) / before) * 100).toFixed(1) : '0.0'}%)`,
    ...(args.params.webp ? [`  webp:     ${summary.webpFiles} files, ${formatBytes(summary.webpBytes)}`] : []),
    `  requests: ${stats.requests} (optimize ${stats.byEndpoint?.optimize ?? 0}, result ${stats.byEndpoint?.result ?? 0}), retries ${stats.retries}, rate-limited ${stats.rateLimited}`,
    `  tokens left: ${formatTokens(stats.tokensLeft)}`,
    `  endpoint: ${connection.label}`,
  ]
  io.stdout.write(`${lines.join('\n')}\n`)
  if (failed.length) {
    io.stderr.write(`\nFailed (originals kept):\n${failed.map((r) => `  ${r.file}: ${r.error?.code}: ${r.error?.message}`).join('\n')}\n`)
  }
  if (args.report) {
    const report = { endpoint: connection.label, params: args.params, summary, files: reports }
    await writeFileAtomic(resolve(args.report), `${JSON.stringify(report, null, 2)}\n`)
    io.stdout.write(`  report:   ${args.report}\n`)
  }
  return failed.length || interrupted ? 1 : 0
}

function parseCli(argv: string[]): Args | 'help' {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        'in-place': { type: 'boolean' },
        endpoint: { type: 'string' },
        compression: { type: 'string' },
        webp: { type: 'boolean' },
        'keep-exif': { type: 'boolean' },
        'no-cmyk-to-rgb': { type: 'boolean' },
        'max-width': { type: 'string' },
        'max-height': { type: 'string' },
        'rate-limit': { type: 'string' },
        report: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) return 'help'
  if (positionals.length !== 1) throw new UsageError(`expected one folder, got ${positionals.length ? positionals.map((p) => `"${p}"`).join(' ') : 'none'}`)
  if (values.out !== undefined && values['in-place']) throw new UsageError('pass either --out <dir> or --in-place, not both')
  if (values.out === undefined && !values['in-place']) throw new UsageError('pass --out <dir> to write elsewhere, or --in-place to overwrite the originals')
  const compression = values.compression ?? DEFAULT_IMAGE_PARAMS.compression
  if (!isCompression(compression)) {
    throw new UsageError(`--compression must be ${COMPRESSIONS.join(', ').replace(/, (\w+)$/, ' or $1')}, got "${compression}"`)
  }
  const dir = resolve(positionals[0]!)
  const out = values.out === undefined ? null : resolve(values.out)
  if (out === dir) throw new UsageError('--out is the folder being optimized; use --in-place to overwrite the originals')
  return {
    dir,
    out,
    endpoint: values.endpoint,
    params: {
      compression,
      webp: values.webp === true,
      keepExif: values['keep-exif'] === true,
      cmykToRgb: values['no-cmyk-to-rgb'] !== true,
      maxWidth: wholeArg('--max-width', values['max-width'], 0) ?? 0,
      maxHeight: wholeArg('--max-height', values['max-height'], 0) ?? 0,
    },
    rateLimit: wholeArg('--rate-limit', values['rate-limit'], 1),
    report: values.report,
  }
}

interface Connection {
  apiKey: string
  endpoint: string | undefined
  /** What the summary shows as the endpoint (never the key). */
  label: string
  rateLimit: number | undefined
  close(): Promise<void>
}

/** The hosted API or a given endpoint with MEGAOPTIM_API_KEY; without either, the embedded server. */
async function connect(args: Args, io: CliIo): Promise<Connection | number> {
  const apiKey = io.env.MEGAOPTIM_API_KEY?.trim()
  if (apiKey) return { apiKey, endpoint: args.endpoint, label: args.endpoint ?? 'https://api.megaoptim.com/v1', rateLimit: undefined, close: async () => {} }
  if (args.endpoint) {
    io.stderr.write(`megaoptim optimize: ${noKeyMessage(args.endpoint)}\n`)
    return 2
  }
  let start: () => Promise<EmbeddedServer>
  try {
    start = (await import('../server.ts')).startEmbeddedServer
  } catch (error) {
    io.stderr.write(`megaoptim optimize: ${noKeyMessage(undefined)}\n(The embedded local optimizer could not be loaded either: ${(error as Error).message}. It needs sharp: npm install sharp.)\n`)
    return 2
  }
  io.stderr.write('megaoptim: MEGAOPTIM_API_KEY is not set: optimizing locally with the embedded compatible server.\n')
  const server = await start()
  // Paced at the embedded server's own limit, not the hosted API's 120/min.
  return { apiKey: server.apiKey, endpoint: server.endpoint, label: 'embedded server (local)', rateLimit: server.rateLimit, close: () => server.close() }
}

/** Image files under `dir`, relative, sorted; the output folder (if inside) is skipped. */
async function findImages(dir: string, out: string | null): Promise<string[]> {
  const found: string[] = []
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true })
    for (const entry of entries) {
      const full = join(current, entry.name)
      if (entry.isDirectory()) {
        if (out && (full === out || full.startsWith(out + sep))) continue
        await walk(full)
      } else if (entry.isFile() && IMAGE.test(entry.name)) {
        found.push(relative(dir, full))
      }
    }
  }
  await walk(dir)
  return found.sort()
}

/** Write one outcome; the original always survives a failure. Returns the file's report line. */
async function writeOutcome(args: Args, rel: string, outcome: OptimizeOutcome): Promise<FileReport> {
  const src = join(args.dir, rel)
  const dest = args.out ? join(args.out, rel) : src
  const file = rel.split(sep).join('/')
  const originalSize = outcome.status === 'failed' ? ((await stat(src).catch(() => null))?.size ?? 0) : outcome.originalSize
  const keepOriginal = async (): Promise<void> => {
    if (dest !== src) await copyFileAtomic(src, dest)
  }
  try {
    if (outcome.status === 'optimized' && outcome.data.length < originalSize) {
      await writeFileAtomic(dest, outcome.data)
      // The optimized file is in place: a WebP that cannot be written costs only itself.
      const webpWritten = outcome.webp ? await writeFileAtomic(`${dest}.webp`, outcome.webp).then(() => true, () => false) : false
      return { file, status: 'optimized', originalSize, outputSize: outcome.data.length, webpSize: webpWritten ? outcome.webp!.length : null }
    }
    await keepOriginal()
    if (outcome.status === 'failed') {
      return { file, status: 'failed', originalSize, outputSize: originalSize, webpSize: null, error: { code: outcome.error.code, message: outcome.error.message } }
    }
    // An "optimized" result that is not smaller is kept as the original: it counts as no gain.
    const reason = outcome.status === 'no-gain' ? outcome.reason : 'the optimized file was not smaller'
    return { file, status: 'no-gain', originalSize, outputSize: originalSize, webpSize: null, ...(reason ? { reason } : {}) }
  } catch (error) {
    const message = `could not write ${dest} (${(error as Error).message}); the original is unchanged at ${src}`
    return { file, status: 'failed', originalSize, outputSize: originalSize, webpSize: null, error: { code: 'MEGAOPTIM_WRITE', message } }
  }
}
