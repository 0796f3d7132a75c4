/**
 * Decides which emitted files are images worth optimizing: the include/exclude globs, the formats the
 * pipeline knows, and `minSize`.
 */
import picomatch from 'picomatch'
import type { ResolvedOptions } from './options.ts'

export type ImageKind = 'jpeg' | 'png' | 'gif' | 'webp' | 'svg'

const KIND_BY_EXTENSION: Record<string, ImageKind> = {
  jpg: 'jpeg',
  jpeg: 'jpeg',
  png: 'png',
  gif: 'gif',
  webp: 'webp',
  svg: 'svg',
}

/** The image kind a file name claims, or null for anything the pipeline does not handle. */
export function kindOf(fileName: string): ImageKind | null {
  const dot = fileName.lastIndexOf('.')
  if (dot < 0) return null
  return KIND_BY_EXTENSION[fileName.slice(dot + 1).toLowerCase()] ?? null
}

/** Output paths as the user writes them in globs: forward slashes, no leading `./` or `/`. */
export function normalizeFileName(fileName: string): string {
  return fileName.replace(/\\/g, '/').replace(/^(\.\/|\/)+/, '')
}

export type FileFilter = (fileName: string) => boolean

export function createFilter(options: Pick<ResolvedOptions, 'include' | 'exclude'>): FileFilter {
  const matchOptions = { nocase: true, dot: true }
  const included = picomatch(options.include, matchOptions)
  const excluded = options.exclude.length > 0 ? picomatch(options.exclude, matchOptions) : () => false
  return (fileName) => {
    const name = normalizeFileName(fileName)
    return kindOf(name) !== null && included(name) && !excluded(name)
  }
}
