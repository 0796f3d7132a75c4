import path from 'node:path'

/** `file_name` for a `url` input: the basename of the URL's path, as it appears in the URL. */
export function urlFileName(url: URL): string {
  const base = path.posix.basename(url.pathname)
  return base === '' ? 'image' : base
}

/** A name safe in a URL path and on any filesystem, keeping the original's look. */
export function safeDownloadName(fileName: string): string {
  let decoded = fileName
  try {
    decoded = decodeURIComponent(fileName)
  } catch {
    // Keep the raw name: it was not percent-encoded.
  }
  const base = path.posix.basename(decoded.replace(/\\/g, '/'))
  const safe = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '').slice(-100)
  return safe === '' ? 'image' : safe
}

