/**
 * `vite preview`: an image that JavaScript references (`import hero from './hero.png'`) can only get its
 * WebP sibling by negotiation. When the request's `Accept` names `image/webp` and `name.png.webp` exists
 * in the output, the sibling is served in its place; every response for an image that has a sibling says
 * `Vary: Accept`, so a cache in between keeps the two apart.
 */
import { stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import { mimeOf } from '../rewrite/resolve.ts'

type Next = (error?: unknown) => void

async function isFile(file: string): Promise<boolean> {
  return stat(file).then((s) => s.isFile(), () => false)
}

/** Whether `accept` lists `image/webp` with a non-zero quality. */
export function acceptsWebp(accept: string | undefined): boolean {
  if (!accept) return false
  return accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    if (type !== 'image/webp') return false
    const q = params.find((p) => p.startsWith('q='))
    return !q || Number(q.slice(2)) > 0
  })
}

/**
 * Connect middleware for Vite's preview server. `outDir` is the built output; `base` Vite's public base
 * path (`/`, `/app/`), which the preview server strips before its static handler.
 */
export function webpNegotiation(outDir: string, base: string) {
  const prefix = base.startsWith('/') ? base.replace(/\/?$/, '/') : '/'
  return (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !req.url) return next()
    const cut = req.url.search(/[?#]/)
    const pathname = cut === -1 ? req.url : req.url.slice(0, cut)
    if (!mimeOf(pathname)) return next()
    let relative: string
    try {
      relative = decodeURIComponent(pathname.startsWith(prefix) ? pathname.slice(prefix.length) : pathname.slice(1))
    } catch {
      return next()
    }
    const file = path.resolve(outDir, relative)
    // Only files inside the output: `..` in a URL never reaches outside it.
    if (!file.startsWith(path.resolve(outDir) + path.sep)) return next()
    isFile(`${file}.webp`).then(
      (hasSibling) => {
        if (hasSibling) {
          res.setHeader('Vary', 'Accept')
          if (acceptsWebp(req.headers.accept)) req.url = `${pathname}.webp${cut === -1 ? '' : req.url!.slice(cut)}`
        }
        next()
      },
      () => next(),
    )
  }
}
