/**
 * `unplugin-megaoptim/client`: the typed MegaOptim API client, usable on its own.
 *
 * ```ts
 * import { createClient } from 'unplugin-megaoptim/client'
 * const client = createClient({ apiKey: process.env.MEGAOPTIM_API_KEY })
 * const outcomes = await client.optimize([{ path: 'logo.png' }], { compression: 'intelligent' })
 * await client.close()
 * ```
 */
export { MegaOptimClient, createClient, type CallOptions } from './client/client.ts'
export { DEFAULT_ENDPOINT, DEFAULT_RATE_LIMIT, resolveClientOptions, type ResolvedClientOptions } from './client/options.ts'
export {
  ArgumentError,
  AuthError,
  CircuitOpenError,
  DownloadError,
  InvalidResponseError,
  MegaOptimError,
  NetworkError,
  RateLimitError,
  ServerError,
  TimeoutError,
  TokensError,
  ValidationError,
  isMegaOptimError,
  type MegaOptimErrorCode,
  type SafeCause,
} from './client/errors.ts'
export { sniffFormat, type ImageFormat } from './contract/formats.ts'
export type * from './client/types.ts'
