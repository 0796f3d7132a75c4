import type { FastifyInstance, FastifyRequest } from 'fastify'
import { requireAccount } from '../auth.ts'
import { publicBase, resultBody, type ServerContext } from '../context.ts'
import { ApiError, errorEnvelope, processingEnvelope } from '../envelope.ts'
import { readForm } from '../form.ts'
import type { RouteLimits } from './limits.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const DEFAULT_TIMEOUT_S = 120

/**
 * `?timeout=N` or a `timeout` form field, clamped to 1..300. Anything unparseable, such as the official
 * Node client's `?timeout300` (no `=`), means the default.
 */
export function parseTimeout(raw: unknown): number {
  if (typeof raw !== 'string' || !/^\s*\d+\s*$/.test(raw)) return DEFAULT_TIMEOUT_S
  return Math.min(300, Math.max(1, Number(raw)))
}

export function registerResultRoute(app: FastifyInstance, ctx: ServerContext, limits: RouteLimits): void {
  app.route({
    // One route for both methods, so both share one rate-limit counter: they are one endpoint.
    method: ['GET', 'POST'],
    url: '/v1/optimize/:id/result',
    config: limits.api,
    preHandler: requireAccount(ctx, 404),
    handler: async (req: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string> }>) => {
      const account = req.account!
      const form = req.method === 'POST' ? await readForm(req) : { fields: {} as Record<string, string> }
      // UUIDs are case-insensitive (RFC 9562); the store keeps the lower-case form randomUUID() gives.
      const id = req.params.id.toLowerCase()
      if (!UUID.test(id)) throw new ApiError(400, `Bad process id "${req.params.id.slice(0, 64)}": expected the UUID /optimize returned.`)
      const timeout = parseTimeout(req.query.timeout ?? form.fields.timeout)
      let job = await ctx.store.getJob(id)
      if (!job) throw new ApiError(404, `Unknown process id ${id}: it never existed or has expired.`)
      if (job.accountId !== account.id) throw new ApiError(401, `The job ${id} does not belong to this API key.`)
      if (job.status === 'queued' || job.status === 'running') {
        const gone = new AbortController()
        const onClose = (): void => gone.abort()
        req.raw.socket?.once('close', onClose)
        try {
          await ctx.runner.waitFor(id, timeout * 1000, gone.signal)
        } finally {
          req.raw.socket?.off('close', onClose)
        }
        job = await ctx.store.getJob(id)
        if (!job) throw new ApiError(404, `Unknown process id ${id}: it never existed or has expired.`)
      }
      if (job.status === 'done') return await resultBody(ctx, job, publicBase(ctx, req))
      if (job.status === 'failed') return errorEnvelope(504, job.error ?? 'The job failed on the server.')
      return processingEnvelope(id)
    },
  })
}
