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

/** Download links are stored as paths; they become absolute with the address the client reached. */
export function publicBase(ctx: ServerContext, req?: FastifyRequest): string {
  if (ctx.options.publicUrl) return ctx.options.publicUrl
  const host = req?.headers.host
  return host ? `${req.protocol}://${host}` : ctx.listenUrl()
}

function absolute(base: string, item: ResultItem): ResultItem {
  return {
    ...item,
    url: item.url === null ? null : base + item.url,
    webp: item.webp === null ? null : { ...item.webp, url: base + item.webp.url },
  }
}

/** The body of a finished `/result` answer, also POSTed to `callback_url`. */
export function resultBody(ctx: ServerContext, job: JobRecord, base: string): Record<string, unknown> {
  const account = ctx.store.getAccountById(job.accountId)
  return {
    status: 'ok',
    code: 200,
    id: job.id,
    result: (job.result ?? []).map((item) => absolute(base, item)),
    user: account ? { name: account.name, email: account.email, tokens: account.tokens } : null,
  }
}
