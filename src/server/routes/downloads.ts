import type { FastifyInstance } from 'fastify'
import type { ServerContext } from '../context.ts'
import { errorEnvelope } from '../envelope.ts'

/**
 * Capability URLs: whoever has the link gets the bytes, no key, until one hour after the job finished.
 * A missing or expired link is a real HTTP 404 (a download is not an API call: clients check its status).
 */
export function registerDownloadRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { dir: string; name: string } }>('/image/:dir/:name', async (req, reply) => {
    const { dir, name } = req.params
    const gone = (): unknown =>
      reply.code(404).send(errorEnvelope(404, 'This download link is unknown or has expired (links last one hour).'))
    if (!/^[0-9a-f]{32}$/.test(dir)) return gone()
    const record = await ctx.store.getDownload(dir, name)
    const now = ctx.options.now()
    if (!record || record.expiresAt <= now) return gone()
    const data = await ctx.store.blobs.get(record.blob)
    if (!data) return gone()
    return reply
      .header('content-type', record.contentType)
      .header('cache-control', `private, max-age=${Math.max(0, Math.floor((record.expiresAt - now) / 1000))}`)
      .header('x-content-type-options', 'nosniff')
      .send(Buffer.from(data.buffer, data.byteOffset, data.byteLength))
  })
}
