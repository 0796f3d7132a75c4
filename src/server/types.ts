/**
 * The public shape of the compatible server (`unplugin-megaoptim/server`).
 * The plugin uses only `startEmbeddedServer()`; `megaoptim serve` uses `createMegaOptimServer()`.
 */
export interface ServerOptions {
  /** Where SQLite and uploads live. Omit for the in-memory store (the embedded default). */
  dataDir?: string
  /**
   * A PostgreSQL URL (`postgres://USER@HOST:PORT/DB`) shared by any number of replicas: accounts, jobs,
   * results and rate limits all live there. Needs the `pg` and `node-pg-migrate` packages. Not with `dataDir`.
   */
  database?: string
  /**
   * With a database: the team result cache keeps each account's results this many days, so the same
   * bytes with the same parameters are fetched instead of encoded again (0 = off). @default 30
   */
  dedupeDays?: number
  /** Requests per minute per key per endpoint. @default 120 */
  rateLimit?: number
  /** Let `url`/`callback_url` reach loopback/private/link-local addresses. @default false */
  allowPrivateUrls?: boolean
  /** Worker pool size. @default os.availableParallelism() */
  workers?: number
  /** Public base URL used in download links; defaults to the listening address. */
  publicUrl?: string
  /**
   * The server sits behind a reverse proxy you trust: download links take their host and scheme from
   * `X-Forwarded-Host`/`X-Forwarded-Proto` (or `Host`). Off, a request's `Host` never reaches a link
   * (a spoofed one would send clients elsewhere). Ignored when `publicUrl` is set. @default false
   */
  trustProxy?: boolean
}

export interface Account {
  name: string
  email: string
  apiKey: string
  /** -1 = unlimited */
  tokens: number
}

export interface ServerStats {
  /** Every HTTP request received, by route (e.g. `POST /v1/optimize`). */
  requests: Record<string, number>
  /** Sum over `requests`. */
  totalRequests: number
}

export interface MegaOptimServer {
  /** Start listening; resolves to the base URL, e.g. `http://127.0.0.1:41234`. */
  listen(opts?: { host?: string; port?: number }): Promise<string>
  /** The API endpoint to give a client, e.g. `http://127.0.0.1:41234/v1`. */
  readonly endpoint: string
  createAccount(input: { name: string; email: string; tokens: number }): Promise<Account>
  readonly stats: ServerStats
  /** Stop taking requests; in-flight jobs finish or stay persisted. */
  close(): Promise<void>
}

export interface EmbeddedServer {
  endpoint: string
  apiKey: string
  /** Requests per minute per endpoint this server allows: the pace to give its client. */
  rateLimit: number
  /** Images it optimizes at once: more in flight only wait in its memory. */
  workers: number
  stats: ServerStats
  close(): Promise<void>
}
