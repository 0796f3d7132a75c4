/**
 * esbuild: images are output files once the build ends. With `write: true` (the default) they are on disk
 * when `onEnd` runs and are replaced atomically; with `write: false` the `outputFiles` entries are swapped
 * for optimized ones and WebP siblings appended. The metafile is switched on to know what was written.
 * A changed image whose name holds esbuild's hash of its old bytes takes the hash of its new ones, and
 * the emitted JS and CSS follow (CSS also gets `image-set()` copies for the WebP siblings).
 */
import { access, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import type { BuildResult, OutputFile, PartialMessage, PluginBuild } from 'esbuild'
import { sha256 } from '../cache.ts'
import { BuildSession, finishCollectingFailure, type AssetResult } from '../pipeline.ts'
import { writeFileAtomic } from '../atomic.ts'
import { followingName, isTextFile, replaceNames } from '../rewrite/names.ts'
import { webpRewriters, type RewriterFor } from '../rewrite/webp-references.ts'
import type { ResolvedOptions } from '../options.ts'
import { consoleLogger, type Logger } from '../report.ts'
import { writeBack } from './write-back.ts'

function outputFile(file: string, contents: Uint8Array): OutputFile {
  return {
    path: file,
    contents,
    hash: sha256(contents).slice(0, 16),
    get text() {
      return Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength).toString('utf8')
    },
  }
}

/** The entry points' paths as given, to watch for them in `onResolve` (nothing else goes through JS). */
function entryPaths(entryPoints: PluginBuild['initialOptions']['entryPoints']): string[] {
  if (!entryPoints) return []
  if (Array.isArray(entryPoints)) return entryPoints.map((e) => (typeof e === 'string' ? e : e.in))
  return Object.values(entryPoints)
}

export function setupEsbuild(build: PluginBuild, options: ResolvedOptions): void {
  build.initialOptions.metafile = true
  // Metafile paths are relative to esbuild's working directory. Without `absWorkingDir` that is the
  // process's cwd when esbuild was first imported, not necessarily now: esbuild tells it to the plugin
  // as the `resolveDir` of each entry point.
  let workingDir = build.initialOptions.absWorkingDir
  const entries = entryPaths(build.initialOptions.entryPoints)
  if (!workingDir && entries.length > 0) {
    const exact = new RegExp(`^(?:${entries.map((e) => e.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`)
    build.onResolve({ filter: exact }, (args) => {
      if (args.kind === 'entry-point') workingDir = args.resolveDir
      return undefined
    })
  }
  build.onEnd(async (result: BuildResult) => {
    if (result.errors.length > 0) return
    const cwd = workingDir ?? process.cwd()
    const initial = build.initialOptions
    // Names in the report and in include/exclude are relative to the output directory.
    const base = initial.outdir
      ? path.resolve(cwd, initial.outdir)
      : initial.outfile
        ? path.dirname(path.resolve(cwd, initial.outfile))
        : cwd
    const relative = (file: string) => path.relative(base, file).split(path.sep).join('/')

    const warnings: PartialMessage[] = []
    const logger: Logger = { info: consoleLogger.info, warn: (text) => warnings.push({ text }) }
    const session = new BuildSession(options, { logger })
    let failure: string | null = null
    try {
      if (result.outputFiles) {
        await optimizeInMemory(session, result.outputFiles, relative, base)
      } else {
        const outputs = result.metafile?.outputs ?? {}
        const renames = await optimizeOnDisk(session, Object.keys(outputs).map((file) => path.resolve(cwd, file)), relative, base)
        // The metafile names what is on disk.
        for (const [from, to] of renames) {
          const key = path.relative(cwd, path.join(base, from)).split(path.sep).join('/')
          if (!outputs[key]) continue
          outputs[path.relative(cwd, path.join(base, to)).split(path.sep).join('/')] = outputs[key]
          delete outputs[key]
        }
      }
    } finally {
      failure = await finishCollectingFailure(session)
    }
    return failure ? { errors: [{ text: failure }], warnings } : { warnings }
  })
}

/** New names for the changed images whose names hold esbuild's hash of their old bytes (see rewrite/names.ts). */
async function followingNames(session: BuildSession, results: AssetResult[], originals: ReadonlyMap<string, Uint8Array>, taken: (name: string) => boolean): Promise<Map<string, string>> {
  const renames = new Map<string, string>()
  for (const result of results) {
    if (!result.changed) continue
    const next = await followingName(result.fileName, originals.get(result.fileName)!, result.data, await session.knownDigests(result))
    if (next && !taken(next)) renames.set(result.fileName, next)
  }
  return renames
}

/** A text output with the renames applied and, for CSS, `image-set()` copies for the images with siblings. */
function rewriteText(
  fileName: string,
  text: string,
  renames: ReadonlyMap<string, string>,
  siblings: ReadonlySet<string>,
  rewriterFor: RewriterFor | null,
): { text: string; count: number } {
  const named = replaceNames(text, renames)
  const addImageSets = /\.css$/i.test(fileName) ? rewriterFor?.(fileName) : null
  const sets = addImageSets ? addImageSets(named.text, fileName, siblings) : { text: named.text, rewritten: 0 }
  return { text: sets.text, count: named.replaced + sets.rewritten }
}

function siblingsOf(results: AssetResult[], renames: ReadonlyMap<string, string>): Set<string> {
  return new Set(results.filter((r) => r.webp).map((r) => renames.get(r.fileName) ?? r.fileName))
}

async function optimizeInMemory(
  session: BuildSession,
  files: OutputFile[],
  relative: (file: string) => string,
  base: string,
): Promise<void> {
  const indexByName = new Map<string, number>()
  files.forEach((file, index) => indexByName.set(relative(file.path), index))
  const inputs = [...indexByName]
    .filter(([name]) => session.wants(name))
    .map(([name, index]) => ({ fileName: name, data: files[index]!.contents }))
  const results = await session.process(inputs)
  const renames = await followingNames(session, results, new Map(inputs.map((i) => [i.fileName, i.data])), (name) => indexByName.has(name))
  session.renameFiles(renames)
  for (const result of results) {
    const index = indexByName.get(result.fileName)!
    const name = renames.get(result.fileName) ?? result.fileName
    if (result.changed) files[index] = outputFile(path.join(base, name), result.data)
    const sibling = `${name}.webp`
    if (result.webp && !indexByName.has(sibling)) files.push(outputFile(path.join(base, sibling), result.webp))
  }
  const siblings = siblingsOf(results, renames)
  const rewriterFor = siblings.size > 0 ? await webpRewriters() : null
  let count = 0
  for (const [name, index] of indexByName) {
    if (!isTextFile(name)) continue
    const file = files[index]!
    const rewritten = rewriteText(name, Buffer.from(file.contents).toString('utf8'), renames, siblings, rewriterFor)
    if (rewritten.count === 0) continue
    files[index] = outputFile(file.path, new Uint8Array(Buffer.from(rewritten.text)))
    count += rewritten.count
  }
  session.noteReferences(count, renames.size)
}

async function optimizeOnDisk(
  session: BuildSession,
  written: string[],
  relative: (file: string) => string,
  base: string,
): Promise<Map<string, string>> {
  const names = new Set(written.map(relative))
  const inputs = await Promise.all(
    [...names].filter((name) => session.wants(name)).map(async (name) => ({
      fileName: name,
      data: new Uint8Array(await readFile(path.join(base, name))),
    })),
  )
  const results = await session.process(inputs)
  const renames = await followingNames(session, results, new Map(inputs.map((i) => [i.fileName, i.data])), (name) => names.has(name))
  session.renameFiles(renames)
  // The optimized bytes go to the new name; the old file goes only once the new one is in place.
  await writeBack(session, base, results.map((r) => ({ ...r, fileName: renames.get(r.fileName) ?? r.fileName })), (name) => names.has(name))
  for (const [from, to] of renames) {
    const moved = await access(path.join(base, to)).then(() => true, () => false)
    if (moved) await rm(path.join(base, from), { force: true })
    else renames.delete(from)
  }
  const siblings = siblingsOf(results, renames)
  const rewriterFor = siblings.size > 0 ? await webpRewriters() : null
  let count = 0
  for (const name of names) {
    if (!isTextFile(name) || renames.has(name)) continue
    const file = path.join(base, name)
    const rewritten = rewriteText(name, await readFile(file, 'utf8'), renames, siblings, rewriterFor)
    if (rewritten.count === 0) continue
    await writeFileAtomic(file, rewritten.text)
    count += rewritten.count
  }
  session.noteReferences(count, renames.size)
  return renames
}
