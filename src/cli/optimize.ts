/**
 * `megaoptim optimize <dir>`: the build plugin's pipeline run over a folder. The same options resolver,
 * backend selector, checks, cache, svgo and report as the plugin, so a file gets the same outcome from
 * both. Nothing is lost: whatever fails keeps its original bytes, every write is a temp file renamed into
 * place, and with --out every file the pipeline does not take is copied, so the output is complete.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import { parseArgs } from 'node:util'
import { COMPRESSIONS, DEFAULT_IMAGE_PARAMS, isCompression } from '../contract/params.ts'
import { copyFileAtomic, writeFileAtomic } from '../core/atomic.ts'
import { MegaOptimError } from '../contract/errors.ts'
import { resolveOptions, type Options } from '../core/options.ts'
import { BuildSession, type AssetResult } from '../core/pipeline.ts'
import { defaultCacheDir } from './cache-dir.ts'
import { type CliIo, noKeyMessage, processIo } from './shared-client.ts'
import { UsageError, wholeNumberArg } from './shared-args.ts'
import { ProgressBar } from './shared-progress.ts'

const HELP = `Usage: megaoptim optimize <dir> (--out <dir> | --in-place) [options]

Optimize every JPEG, PNG, GIF, WebP and SVG under <dir> (recursively), as the build plugin does: the
same checks, cache and report. Rasters go to the MegaOptim API with the key in MEGAOPTIM_API_KEY, or,
without a key, to the embedded engine on this machine (needs sharp); SVGs are optimized with svgo.
A second run on the same files sends nothing: results are cached, and the tool knows its own output.

Options:
  --out <dir>              write the results to this folder, mirroring the tree (other files are copied)
  --in-place               overwrite the originals (only those that got smaller)
  --endpoint <url>         API base URL (default https://api.megaoptim.com/v1)
  --fallback               when the API cannot be reached, is down or out of tokens, use the embedded
                           engine for the images it could not do
  --compression <level>    intelligent (default), ultra or lossless
  --webp                   also write a WebP version next to each image (name.ext.webp)
  --keep-exif              keep EXIF/IPTC metadata
  --no-cmyk-to-rgb         keep CMYK images in CMYK
  --max-width <n>          fit inside this width (never enlarges)
  --max-height <n>         fit inside this height (never enlarges)
  --rate-limit <n>         requests per minute per endpoint (default 120, the API's limit)
  --cache <dir>            the cache folder (default: node_modules/.cache/unplugin-megaoptim of the
                           project around the working directory, else the user's cache folder)
  --no-cache               neither read nor write a cache
  --report <file.json>     write the JSON report (the plugin's schema, see the README)
  -h, --help               show this help

Exit code: 0 when nothing failed, 1 when some image failed (its original is kept), 2 on a usage error.`

/**
 * Files read per pipeline call: bounds the bytes held in memory, and what an interrupt (Ctrl-C) waits
 * for; 25 is still five full batches of 5 in flight.
 */
const CHUNK = 25

interface Args {
  dir: string
  out: string | null
  options: Options
}

export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let args: Args
  let session: BuildSession
  try {
    const parsed = parseCli(argv, io.cwd ?? process.cwd())
    if (parsed === 'help') {
      io.stdout.write(`${HELP}\n`)
      return 0
    }
    args = parsed
    const info = await stat(args.dir).catch(() => null)
    if (!info?.isDirectory()) throw new UsageError(`${args.dir} is not a folder`)
    const resolved = resolveOptions(args.options, { env: io.env, cwd: io.cwd ?? process.cwd() })
    // Asked for by name, a server is not swapped for the embedded engine behind the user's back.
    if (args.options.endpoint !== undefined && resolved.backend.kind === 'embedded') {
      io.stderr.write(`megaoptim optimize: ${noKeyMessage(args.options.endpoint)}\n`)
      return 2
    }
    session = new BuildSession(resolved, {
      progress: false,
      logger: { info: (message) => io.stdout.write(`${message}\n`), warn: (message) => io.stderr.write(`${message}\n`) },
    })
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof MegaOptimError && error.code === 'MEGAOPTIM_INVALID_OPTION')) throw error
    const message = (error as Error).message.replace(/^\[megaoptim\] /, '')
    io.stderr.write(`megaoptim optimize: ${message}\nRun 'megaoptim optimize --help' for the options.\n`)
    return 2
  }

  const files = await listFiles(args.dir, args.out)
  const images = files.filter((rel) => session.wants(toName(rel)))
  const others = files.filter((rel) => !session.wants(toName(rel)))
  const progress = new ProgressBar(io, images.length)
  let stopAfterChunk = false
  // A first Ctrl-C lets the chunk in flight finish (its results are paid for); a second one kills.
  const onSigint = () => {
    stopAfterChunk = true
    io.stderr.write('\nmegaoptim: interrupted: finishing the images in flight (Ctrl-C again to quit at once)\n')
  }
  process.once('SIGINT', onSigint)
  let done = 0
  let copied = 0
  try {
    for (; done < images.length && !stopAfterChunk; done += CHUNK) {
      const chunk = images.slice(done, done + CHUNK)
      const assets = await Promise.all(chunk.map(async (rel) => ({ fileName: toName(rel), data: new Uint8Array(await readFile(join(args.dir, rel))) })))
      const results = new Map((await session.process(assets)).map((r) => [r.fileName, r]))
      for (const rel of chunk) {
        const result = results.get(toName(rel))
        if (result) {
          await write(args, rel, result, session)
          progress.tick(result.report.error !== null)
        } else {
          // Wanted but not taken (empty): copied like any other file.
          if (args.out && (await copyTo(args, rel))) copied++
          progress.tick(false)
        }
      }
    }
    if (args.out && !stopAfterChunk) for (const rel of others) if (await copyTo(args, rel)) copied++
  } finally {
    process.removeListener('SIGINT', onSigint)
    progress.finish()
  }
  const report = await session.finish()
  const skipped = stopAfterChunk ? images.length - Math.min(done, images.length) : 0
  if (report.totals.files === 0) io.stdout.write(`megaoptim: no JPEG, PNG, GIF, WebP or SVG under ${args.dir}\n`)
  if (args.out) io.stdout.write(`megaoptim: ${copied} other ${copied === 1 ? 'file' : 'files'} copied unchanged to ${args.out}\n`)
  if (skipped) io.stdout.write(`megaoptim: interrupted: ${skipped} images not processed${args.out ? ' and not copied to the output' : ', left as they were'}\n`)
  if (session.options.report) io.stdout.write(`megaoptim: report written to ${session.options.report}\n`)
  return report.totals.errors > 0 || skipped > 0 ? 1 : 0
}

/** A path relative to the folder, with `/`, as the pipeline and the report name files. */
function toName(rel: string): string {
  return rel.split(sep).join('/')
}

/** Writes one result: the optimized bytes (or, with --out, a copy of the original) and its WebP sibling. */
async function write(args: Args, rel: string, result: AssetResult, session: BuildSession): Promise<void> {
  const src = join(args.dir, rel)
  const dest = args.out ? join(args.out, rel) : src
  try {
    if (result.changed) await writeFileAtomic(dest, result.data)
    else if (dest !== src) await copyFileAtomic(src, dest)
  } catch (error) {
    session.writeFailed(result.fileName, 'image', error)
    // The original is whole (writes are atomic); with --out, it still belongs in the output.
    if (dest !== src) await copyFileAtomic(src, dest).catch(() => {})
    return
  }
  if (result.webp) await writeFileAtomic(`${dest}.webp`, result.webp).catch((error: unknown) => session.writeFailed(result.fileName, 'webp', error))
}

async function copyTo(args: Args, rel: string): Promise<boolean> {
  return copyFileAtomic(join(args.dir, rel), join(args.out!, rel)).then(
    () => true,
    () => false,
  )
}

function parseCli(argv: string[], cwd: string): Args | 'help' {
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
        fallback: { type: 'boolean' },
        compression: { type: 'string' },
        webp: { type: 'boolean' },
        'keep-exif': { type: 'boolean' },
        'no-cmyk-to-rgb': { type: 'boolean' },
        'max-width': { type: 'string' },
        'max-height': { type: 'string' },
        'rate-limit': { type: 'string' },
        cache: { type: 'string' },
        'no-cache': { type: 'boolean' },
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
  if (values.cache !== undefined && values['no-cache']) throw new UsageError('pass either --cache <dir> or --no-cache, not both')
  const compression = values.compression ?? DEFAULT_IMAGE_PARAMS.compression
  if (!isCompression(compression)) {
    throw new UsageError(`--compression must be ${COMPRESSIONS.join(', ').replace(/, (\w+)$/, ' or $1')}, got "${compression}"`)
  }
  const dir = resolve(cwd, positionals[0]!)
  const out = values.out === undefined ? null : resolve(cwd, values.out)
  if (out === dir) throw new UsageError('--out is the folder being optimized; use --in-place to overwrite the originals')
  const maxWidth = wholeNumberArg('--max-width', values['max-width'], 0)
  const maxHeight = wholeNumberArg('--max-height', values['max-height'], 0)
  const rateLimit = wholeNumberArg('--rate-limit', values['rate-limit'], 1)
  return {
    dir,
    out,
    options: {
      ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
      fallback: values.fallback === true ? 'embedded' : false,
      compression,
      webp: values.webp === true,
      keepExif: values['keep-exif'] === true,
      cmykToRgb: values['no-cmyk-to-rgb'] !== true,
      ...(maxWidth !== undefined ? { maxWidth } : {}),
      ...(maxHeight !== undefined ? { maxHeight } : {}),
      ...(rateLimit !== undefined ? { rateLimit } : {}),
      cache: values['no-cache'] ? false : resolve(cwd, values.cache ?? defaultCacheDir(cwd)),
      ...(values.report !== undefined ? { report: resolve(cwd, values.report) } : {}),
      logLevel: 'info',
    },
  }
}

/** Every file under `dir`, relative, sorted; the output folder (if inside) is skipped. */
async function listFiles(dir: string, out: string | null): Promise<string[]> {
  const found: string[] = []
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true })
    for (const entry of entries) {
      const full = join(current, entry.name)
      if (entry.isDirectory()) {
        if (out && (full === out || full.startsWith(out + sep))) continue
        await walk(full)
      } else if (entry.isFile()) {
        found.push(relative(dir, full))
      }
    }
  }
  await walk(dir)
  return found.sort()
}
