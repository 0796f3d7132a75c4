/**
 * From a URL written in an emitted HTML or CSS file to the output file it names, so a reference can be
 * matched with the WebP siblings the build emitted. Output files are forward-slash paths relative to the
 * output directory (`assets/hero-3fa1.png`).
 */
import path from 'node:path'
import { CONTENT_TYPES, formatFromName } from '../../contract/formats.ts'

/** The path part of `url` and what follows it (`?query#hash`), or null for URLs that name no file here. */
function splitUrl(url: string): { pathname: string; rest: string } | null {
  const trimmed = url.trim()
  if (!trimmed || /^(data|blob|javascript|about|mailto):/i.test(trimmed)) return null
  const cut = trimmed.search(/[?#]/)
  const pathname = cut === -1 ? trimmed : trimmed.slice(0, cut)
  return { pathname, rest: cut === -1 ? '' : trimmed.slice(cut) }
}

function decode(value: string): string {
  try {
    return decodeURI(value)
  } catch {
    return value
  }
}

/**
 * The output file `url`, written in `fromFile`, names among `files`, or null. Root-relative and absolute
 * URLs carry the deploy base (`/`, `/app/`, `https://cdn.example.com/`): they match the file their path
 * ends with, so no base has to be configured here.
 */
export function resolveReference(url: string, fromFile: string, files: ReadonlySet<string>): string | null {
  const parts = splitUrl(url)
  if (!parts) return null
  let pathname = decode(parts.pathname)
  const absolute = /^([a-z][a-z0-9+.-]*:)?\/\//i.exec(pathname)
  if (absolute) pathname = pathname.slice(absolute[0].length).replace(/^[^/]*/, '') // drop the origin
  if (pathname.startsWith('/')) {
    const rooted = pathname.replace(/^\/+/, '')
    if (files.has(rooted)) return rooted
    let best: string | null = null
    for (const file of files) {
      if (rooted.endsWith(`/${file}`) && (!best || file.length > best.length)) best = file
    }
    return best
  }
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(fromFile), pathname))
  return files.has(joined) ? joined : null
}

/** `url` pointing at the `.webp` sibling of what it names: the suffix goes before any query or fragment. */
export function webpUrl(url: string): string {
  const parts = splitUrl(url)!
  return `${url.trim().slice(0, parts.pathname.length)}.webp${parts.rest}`
}

/**
 * The media type of an image named by `file` that can have a WebP sibling (a JPEG, PNG or GIF), for
 * `type()` in `image-set()`; null for anything else.
 */
export function mimeOf(file: string): string | null {
  const format = formatFromName(file)
  return format && format !== 'webp' ? CONTENT_TYPES[format] : null
}
