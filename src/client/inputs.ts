/**
 * Turns caller inputs into unique work items: names resolved, formats sniffed, identical bytes (or the
 * same URL) merged so they are sent once. Inputs that can never succeed fail here, before any request.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { MegaOptimError, ValidationError, safeCause } from './errors.ts'
import { type ImageFormat, RASTER_FORMATS, formatFromName, sniffFormat } from '../contract/formats.ts'
import type { OptimizeInput } from './types.ts'

export type Source = { kind: 'bytes'; data: Uint8Array } | { kind: 'path'; path: string } | { kind: 'url'; url: string }

export interface UniqueItem {
  /** Dedupe key: hash of the bytes, or the URL. */
  key: string
  /** The filename sent (a basename), also what `file_name` in the result is matched against. */
  uploadName: string
  source: Source
  /** Sniffed from the bytes; for URLs, from the name's extension (null: any image format). */
  format: ImageFormat | null
  /** Byte size of a file or bytes input. */
  size: number | null
  /** sha256 of the bytes, to notice a file changed between hashing and sending. */
  hash: string | null
  /** Indexes of the inputs that share these bytes. */
  members: number[]
}

export interface PreparedInputs {
  /** Display name per input, in input order. */
  names: string[]
  /** Failures found before sending, by input index. */
  failed: Map<number, MegaOptimError>
  unique: UniqueItem[]
}

const SUPPORTED: ReadonlySet<ImageFormat> = new Set(RASTER_FORMATS)

export async function prepareInputs(inputs: readonly OptimizeInput[], signal?: AbortSignal): Promise<PreparedInputs> {
  const names: string[] = []
  const failed = new Map<number, MegaOptimError>()
  const byKey = new Map<string, UniqueItem>()
  // Sequential on purpose: hashing is fast, and reading thousands of files at once would exhaust descriptors.
  for (const [index, input] of inputs.entries()) {
    signal?.throwIfAborted()
    const name = displayName(input, index)
    names.push(name)
    try {
      const item = await describeInput(input, name)
      const existing = byKey.get(item.key)
      if (existing) existing.members.push(index)
      else byKey.set(item.key, { ...item, members: [index] })
    } catch (error) {
      failed.set(index, error instanceof MegaOptimError ? error : unsupported(name, `it could not be read (${safeCause(error).message})`))
    }
  }
  return { names, failed, unique: [...byKey.values()] }
}

/** Read the bytes of a file or bytes item at send time; a file that changed since it was hashed fails. */
export async function loadBytes(item: UniqueItem): Promise<Uint8Array> {
  if (item.source.kind === 'bytes') return item.source.data
  if (item.source.kind === 'url') throw new TypeError('a URL item has no bytes')
  let data: Uint8Array
  try {
    data = await readFile(item.source.path)
  } catch (error) {
    throw unsupported(item.uploadName, `it could not be read (${safeCause(error).message})`)
  }
  if (sha256(data) !== item.hash) throw unsupported(item.uploadName, 'the file changed while it was being optimized; run again')
  return data
}

function displayName(input: OptimizeInput, index: number): string {
  if (input && typeof input === 'object') {
    if ('url' in input && typeof input.url === 'string') return urlName(input.url) ?? input.url
    if ('path' in input && typeof input.path === 'string') return typeof input.name === 'string' && input.name ? input.name : basename(input.path)
    if ('name' in input && typeof input.name === 'string' && input.name) return input.name
  }
  return `input #${index + 1}`
}

async function describeInput(input: OptimizeInput, name: string): Promise<Omit<UniqueItem, 'members'>> {
  const uploadName = basename(name.replace(/\\/g, '/')) || 'image'
  if (input && typeof input === 'object' && 'url' in input && typeof input.url === 'string') {
    let url: URL
    try {
      url = new URL(input.url)
    } catch {
      throw unsupported(name, 'its url is not a valid URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw unsupported(name, 'its url is not http(s)')
    return { key: `url:${url.href}`, uploadName: urlName(url.href) ?? 'image', source: { kind: 'url', url: url.href }, format: formatFromName(url.pathname), size: null, hash: null }
  }
  let data: Uint8Array
  let source: Source
  if (input && typeof input === 'object' && 'path' in input && typeof input.path === 'string') {
    try {
      data = await readFile(input.path)
    } catch (error) {
      throw unsupported(name, `it could not be read (${safeCause(error).message})`)
    }
    source = { kind: 'path', path: input.path }
  } else if (input && typeof input === 'object' && 'data' in input && input.data instanceof Uint8Array) {
    data = input.data
    source = { kind: 'bytes', data }
  } else {
    throw new ValidationError(`${name} is not an input the client understands: pass { name, data: Uint8Array }, { path } or { url }.`, { file: name }, 'MEGAOPTIM_UNSUPPORTED_INPUT')
  }
  if (data.length === 0) throw unsupported(name, 'it is empty')
  const format = sniffFormat(data)
  if (!format || !SUPPORTED.has(format)) throw unsupported(name, 'it is not a JPEG, PNG, GIF or WebP image')
  const hash = sha256(data)
  return { key: `sha256:${hash}`, uploadName, source, format, size: data.length, hash }
}

/** The URL's last path segment, URL-decoded (what the API reports as `file_name`). */
export function urlName(href: string): string | null {
  try {
    const last = new URL(href).pathname.split('/').pop() ?? ''
    return last ? safeDecode(last) : null
  } catch {
    return null
  }
}

export function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

function unsupported(name: string, why: string): ValidationError {
  return new ValidationError(`${name} was not sent: ${why}. The original is kept.`, { file: name }, 'MEGAOPTIM_UNSUPPORTED_INPUT')
}
