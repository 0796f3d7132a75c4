import { createMegaOptimServer } from '../server/server.ts'
import { parse, UsageError, wholeNumberArg } from './shared-args.ts'
import { redactUrl } from '../server/store/postgres/redact.ts'
import { untilStopped } from './shared-signals.ts'
import { STORAGE_HELP, storageArgs } from './shared-storage.ts'

const HELP = `Usage: megaoptim serve (--data-dir DIR | --database URL) [options]

Run the MegaOptim-compatible server. Accounts, tokens, jobs and downloads live in DIR (SQLite, one
machine) or in a PostgreSQL database that any number of replicas share.

Options:
  --host HOST              address to listen on (default 127.0.0.1)
  --port N                 port to listen on, 0 = any free port (default 8080)
${STORAGE_HELP}
  --rate-limit N           requests per minute per key per endpoint (default 120)
  --allow-private-urls     let url/callback_url reach loopback, private and link-local addresses
  --public-url URL         base URL put in download links (default: the address the server listens on)
  --trust-proxy            behind a reverse proxy you trust: links take X-Forwarded-Host/-Proto (or Host);
                           without it a request's Host header never reaches a link
  --workers N              images optimized at once (default: the number of CPUs); with --database,
                           0 makes an API-only replica (run the images with megaoptim worker)
  --lease-seconds N        with --database: a replica's claim on an image lasts N s unless renewed; a
                           dead replica's images are taken over once theirs expire (default 30)
  --dedupe-days N          with --database: the team result cache keeps each account's results N days;
                           the same image with the same settings is fetched, not encoded (default 30, 0 = off)
  --job-timeout SECONDS    a job whose images were worked on this long in all fails with code 504 (default 300)
  --item-timeout SECONDS   one image's time budget; past it the original is answered as "no gain" (default 30)
  --pixel-budget N         decoded pixels all workers may hold at once; an image waits, undecoded, until its
                           pixels fit (default 100000000, one image of the largest accepted size)
  --job-delay MS           wait before each job (for tests that must catch a job mid-flight)
  --signup-tokens N        tokens for each account made through POST /v1/register, which anyone
                           reaching the server can call (default 0: such accounts start empty)
  -h, --help               show this help

Create an API key with: megaoptim keys create (--data-dir DIR | --database URL) --name NAME --email EMAIL --tokens N`

export async function run(argv: string[]): Promise<number> {
  let values
  try {
    values = parse(argv, {
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      database: { type: 'string' },
      'lease-seconds': { type: 'string' },
      'dedupe-days': { type: 'string' },
      'rate-limit': { type: 'string' },
      'allow-private-urls': { type: 'boolean' },
      'public-url': { type: 'string' },
      'trust-proxy': { type: 'boolean' },
      'item-timeout': { type: 'string' },
      'pixel-budget': { type: 'string' },
      workers: { type: 'string' },
      'job-timeout': { type: 'string' },
      'job-delay': { type: 'string' },
      'signup-tokens': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    }).values
  } catch (error) {
    console.error(`megaoptim serve: ${(error as Error).message}\nRun 'megaoptim serve --help' for the options.`)
    return 2
  }
  if (values.help) {
    console.log(HELP)
    return 0
  }
  let server
  let port: number
  try {
    const storage = storageArgs(values)
    const leaseSeconds = wholeNumberArg('--lease-seconds', values['lease-seconds'] as string | undefined, 1)
    port = wholeNumberArg('--port', values.port as string | undefined, 0, 65535) ?? 8080
    const jobTimeout = wholeNumberArg('--job-timeout', values['job-timeout'] as string | undefined, 1)
    const itemTimeout = wholeNumberArg('--item-timeout', values['item-timeout'] as string | undefined, 1)
    server = createMegaOptimServer({
      ...storage,
      leaseMs: leaseSeconds === undefined ? undefined : leaseSeconds * 1000,
      dedupeDays: wholeNumberArg('--dedupe-days', values['dedupe-days'] as string | undefined, 0),
      rateLimit: wholeNumberArg('--rate-limit', values['rate-limit'] as string | undefined, 1),
      allowPrivateUrls: values['allow-private-urls'] === true,
      publicUrl: values['public-url'] as string | undefined,
      trustProxy: values['trust-proxy'] === true,
      itemTimeoutMs: itemTimeout === undefined ? undefined : itemTimeout * 1000,
      pixelBudget: wholeNumberArg('--pixel-budget', values['pixel-budget'] as string | undefined, 1),
      workers: wholeNumberArg('--workers', values.workers as string | undefined, storage.database === undefined ? 1 : 0),
      jobTimeoutMs: jobTimeout === undefined ? undefined : jobTimeout * 1000,
      jobDelayMs: wholeNumberArg('--job-delay', values['job-delay'] as string | undefined, 0),
      signupTokens: wholeNumberArg('--signup-tokens', values['signup-tokens'] as string | undefined, 0) ?? 0,
    })
  } catch (error) {
    if (error instanceof UsageError || error instanceof TypeError) {
      console.error(`megaoptim serve: ${error.message}\nRun 'megaoptim serve --help' for the options.`)
      return 2
    }
    throw error
  }

  const host = (values.host as string | undefined) ?? '127.0.0.1'
  const url = await server.listen({ host, port })
  if (host === '0.0.0.0' || host === '::' || host === '[::]') {
    // A wildcard bind is no address to connect to: print one that works from this machine.
    console.log(`megaoptim server listening on all interfaces (${host}); from this machine: ${url} (API endpoint ${server.endpoint})`)
  } else {
    console.log(`megaoptim server listening on ${url} (API endpoint ${server.endpoint})`)
  }
  const o = server.options
  console.log(
    `data in ${o.database === undefined ? o.dataDir : redactUrl(o.database)}; ${o.workers} worker(s); ${o.rateLimit} requests/min per key and endpoint; ` +
      `private URLs ${o.allowPrivateUrls ? 'allowed' : 'refused'}`,
  )

  return untilStopped('serve', () => server.close())
}
