/**
 * esbuild: images are output files once the build ends. With `write: true` (the default) they are on disk
 * when `onEnd` runs and are replaced atomically; with `write: false` the `outputFiles` entries are swapped
 * for optimized ones and WebP siblings appended. The metafile is switched on to know what was written.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { BuildResult, OutputFile, PartialMessage, PluginBuild } from 'esbuild'
import { sha256 } from '../cache.ts'
import { BuildSession, finishCollectingFailure } from '../pipeline.ts'
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
        const written = Object.keys(result.metafile?.outputs ?? {}).map((file) => path.resolve(cwd, file))
        await optimizeOnDisk(session, written, relative, base)
      }
    } finally {
      failure = await finishCollectingFailure(session)
    }
    return failure ? { errors: [{ text: failure }], warnings } : { warnings }
  })
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
  for (const result of results) {
    const index = indexByName.get(result.fileName)!
    if (result.changed) files[index] = outputFile(files[index]!.path, result.data)
    const sibling = `${result.fileName}.webp`
    if (result.webp && !indexByName.has(sibling)) files.push(outputFile(path.join(base, sibling), result.webp))
  }
}

async function optimizeOnDisk(
  session: BuildSession,
  written: string[],
  relative: (file: string) => string,
  base: string,
): Promise<void> {
  const names = new Set(written.map(relative))
  const inputs = await Promise.all(
    [...names].filter((name) => session.wants(name)).map(async (name) => ({
      fileName: name,
      data: new Uint8Array(await readFile(path.join(base, name))),
    })),
  )
  await writeBack(session, base, await session.process(inputs), (name) => names.has(name))
}
