import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import type { ServerContext } from '../context.ts'
import type { RouteLimits } from './limits.ts'

function packageVersion(): string {
  try {
    const require = createRequire(import.meta.url)
    // Source tree (src/server/routes/) or a bundled chunk in dist/: the package root is a few levels up.
    for (const candidate of ['../package.json', '../../package.json', '../../../package.json', '../../../../package.json']) {
      try {
        const pkg = require(candidate) as { name?: string; version?: string }
        if (pkg.name === 'unplugin-megaoptim' && pkg.version) return pkg.version
      } catch {
        // Try the next layout (source tree vs. dist/).
      }
    }
  } catch {
    // No version to show.
  }
  return 'unknown'
}

export function registerHealthRoutes(app: FastifyInstance, ctx: ServerContext, limits: RouteLimits): void {
  const version = packageVersion()
  app.get('/', { config: limits.health }, async () => ({ status: 1 }))
  app.get('/ping', { config: limits.health }, async () => ({ status: 'ok', code: 200 }))
  app.get('/status', { config: limits.health }, async () => ({
    status: 'ok',
    code: 200,
    software: {
      name: 'unplugin-megaoptim',
      version,
      engine: await ctx.engineVersion(),
      node: process.version,
      store: ctx.store.kind,
      workers: ctx.options.workers,
    },
    jobs: await ctx.runner.stats(),
  }))
}
