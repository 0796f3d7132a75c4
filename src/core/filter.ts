/**
 * Decides which emitted files are images worth optimizing: the include/exclude globs, the formats the
 * pipeline knows, and `minSize`.
 */
import picomatch from 'picomatch'
import { kindFromName } from '../contract/formats.ts'
import type { ResolvedOptions } from './options.ts'

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
    return kindFromName(name) !== null && included(name) && !excluded(name)
  }
}
