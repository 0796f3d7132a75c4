import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerContext } from './context.ts'
import { ApiError } from './envelope.ts'

/** Longer keys are refused unread: no key this server makes comes near it. */
export const MAX_KEY_LENGTH = 128

/** The key as the clients send it: `X-API-KEY` (header names are case-insensitive); '' when absent. */
function rawApiKey(req: FastifyRequest): string {
  const value = req.headers['x-api-key']
  return ((Array.isArray(value) ? value[0] : value) ?? '').trim()
}

/** The key when there is a plausible one (present, not over `MAX_KEY_LENGTH`). */
export function apiKeyOf(req: FastifyRequest): string | undefined {
  const key = rawApiKey(req)
  return key !== '' && key.length <= MAX_KEY_LENGTH ? key : undefined
}

/**
 * A preHandler that attaches the account or answers with `code` (404 from the auth guard; `/users/info`
 * says 401). The message never repeats the key.
 */
export function requireAccount(ctx: ServerContext, code: 401 | 404) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const raw = rawApiKey(req)
    if (raw === '') throw new ApiError(code, 'Missing API key: send it in the X-API-KEY header.')
    if (raw.length > MAX_KEY_LENGTH) {
      throw new ApiError(code, `Invalid API key: it is ${raw.length} characters long, more than ${MAX_KEY_LENGTH}; check the key you were given (X-API-KEY header).`)
    }
    const key = raw
    const account = await ctx.store.getAccount(key)
    if (!account) throw new ApiError(code, 'Invalid API key: check the key you were given (X-API-KEY header).')
    req.account = account
  }
}
