import type { RateLimitOptions } from '@fastify/rate-limit'

/** Per-route `config` objects for @fastify/rate-limit (each route gets its own counter). */
export interface RouteLimits {
  api: { rateLimit: RateLimitOptions }
  health: { rateLimit: RateLimitOptions }
}
