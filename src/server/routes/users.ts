import type { FastifyInstance } from 'fastify'
import { requireAccount } from '../auth.ts'
import type { ServerContext } from '../context.ts'
import type { RouteLimits } from './limits.ts'

export function registerUsersRoute(app: FastifyInstance, ctx: ServerContext, limits: RouteLimits): void {
  app.route({
    method: ['GET', 'POST'],
    url: '/v1/users/info',
    config: limits.api,
    // The contract's table gives 401 for a bad key here (the auth guard elsewhere says 404).
    preHandler: requireAccount(ctx, 401),
    handler: async (req) => {
      const account = (await ctx.store.getAccountById(req.account!.id)) ?? req.account!
      return {
        status: 'ok',
        code: 200,
        result: { name: account.name, email: account.email, tokens: account.tokens },
      }
    },
  })
}
