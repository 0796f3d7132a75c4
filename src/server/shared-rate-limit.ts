import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import type { Store } from './store/types.ts'

type Hit = NonNullable<Store['hitRateLimit']>

/**
 * A store for @fastify/rate-limit whose windows live in the shared database, so that a key's limit
 * holds across replicas (each process counting alone would let N replicas grant N times the limit).
 * One counter per endpoint, as the in-process default keeps one per route.
 */
export function sharedRateLimitStore(hit: Hit) {
  return class SharedRateLimitStore implements FastifyRateLimitStore {
    readonly route: string

    constructor(route?: unknown) {
      this.route = typeof route === 'string' ? route : ''
    }

    incr(key: string, cb: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      hit(`${this.route} ${key}`, timeWindow).then(
        (result) => cb(null, result),
        (error: unknown) => cb(error instanceof Error ? error : new Error(String(error))),
      )
    }

    child(routeOptions: object): SharedRateLimitStore {
      // At run time the plugin passes the route's merged limit options, the route itself under `routeInfo`.
      const info = (routeOptions as { routeInfo?: { method?: string | string[]; url?: string } }).routeInfo ?? {}
      return new SharedRateLimitStore(`${[info.method ?? ''].flat().join(',')} ${info.url ?? ''}`)
    }
  }
}
