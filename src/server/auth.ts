import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerContext } from './context.ts'
import { ApiError } from './envelope.ts'

/** The key as the clients send it: `X-API-KEY` (header names are case-insensitive). */
export function apiKeyOf(req: FastifyRequest): string | undefined {
  const value = req.headers['x-api-key']
  const key = Array.isArray(value) ? value[0] : value
  return key && key.length <= 128 ? key.trim() : undefined
}

/**
 * A preHandler that attaches the account or answers with `code` (404 from the auth guard; `/users/info`
 * says 401). The message never repeats the key.
 */
export function requireAccount(ctx: ServerContext, code: 401 | 404) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const key = apiKeyOf(req)
    if (!key) throw new ApiError(code, 'Missing API key: send it in the X-API-KEY header.')
    const account = ctx.store.getAccount(key)
    if (!account) throw new ApiError(code, 'Invalid API key: check the key you were given (X-API-KEY header).')
    req.account = account
  }
}
