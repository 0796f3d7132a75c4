/** A database URL as it may be printed: without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.href
  } catch {
    return '(an unparseable database URL)'
  }
}
