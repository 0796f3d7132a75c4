import type { FastifyRequest } from 'fastify'
import type { JobRunner } from './jobs.ts'
import type { ResolvedServerOptions } from './options.ts'
import type { AccountRecord, JobRecord, ResultItem, Store } from './store/types.ts'
import type { ServerStats } from './types.ts'

/** What every route needs, built once per server. */
export interface ServerContext {
  options: ResolvedServerOptions
  store: Store
  runner: JobRunner
  stats: ServerStats
  /** The listening address, e.g. `http://127.0.0.1:41234`. */
  listenUrl(): string
  /** The engine's version (it is loaded for the answer); null when it cannot load (sharp missing). */
  engineVersion(): Promise<string | null>
}

declare module 'fastify' {
  interface FastifyRequest {
    account?: AccountRecord
  }
}

/** What a Host header may hold to be put in a link: a name or an address, and a port. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/**
 * Download links are stored as paths; they become absolute with `publicUrl`, or the server's own address.
 * The request's Host (or X-Forwarded-Host) is used only with `trustProxy`: anyone can send any Host, and a
 * spoofed one would put someone else's server in a link a client follows.
 */
export function publicBase(ctx: ServerContext, req?: FastifyRequest): string {
  if (ctx.options.publicUrl) return ctx.options.publicUrl
  if (ctx.options.trustProxy && req && HOST.test(req.host)) return `${req.protocol}://${req.host}`
  return ctx.listenUrl()
}

function absolute(base: string, item: ResultItem): ResultItem {
  return {
    ...item,
    url: item.url === null ? null : base + item.url,
    webp: item.webp === null ? null : { ...item.webp, url: base + item.webp.url },
  }
}

/** The body of a finished `/result` answer, also POSTed to `callback_url`. */
export async function resultBody(ctx: ServerContext, job: JobRecord, base: string): Promise<Record<string, unknown>> {
  const account = await ctx.store.getAccountById(job.accountId)
  return {
    status: 'ok',
    code: 200,
    id: job.id,
    result: (job.result ?? []).map((item) => absolute(base, item)),
    user: account ? { name: account.name, email: account.email, tokens: account.tokens } : null,
  }
}
