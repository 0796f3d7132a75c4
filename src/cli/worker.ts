import { createMegaOptimServer } from '../server/server.ts'
import { parse, UsageError, wholeNumberArg } from './shared-args.ts'
import { redactUrl } from '../server/store/postgres/redact.ts'
import { untilStopped } from './shared-signals.ts'
import { DATABASE_ENV, storageArgs } from './shared-storage.ts'

const HELP = `Usage: megaoptim worker --database URL [options]

Optimize the images queued in a shared PostgreSQL database, without serving the API: add these beside
API-only replicas (megaoptim serve --database URL --workers 0) to scale the encoding alone.

Options:
  --database URL           postgres://USER@HOST:PORT/DB (default: $${DATABASE_ENV})
  --workers N              images optimized at once (default: the number of CPUs)
  --lease-seconds N        a claim on an image lasts N s unless renewed; a dead worker's images are taken
                           over once theirs expire (default 30)
  --dedupe-days N          the team result cache keeps each account's results N days (default 30, 0 = off)
  --allow-private-urls     let url/callback_url reach loopback, private and link-local addresses
  --public-url URL         base URL put in callback download links (default: the one the client reached)
  --job-timeout SECONDS    a job whose images were worked on this long in all fails with code 504 (default 300)
  --item-timeout SECONDS   one image's time budget (default 30)
  --pixel-budget N         decoded pixels all workers may hold at once (default 100000000)
  -h, --help               show this help`

export async function run(argv: string[]): Promise<number> {
  let server
  try {
    const { values } = parse(argv, {
      database: { type: 'string' },
      workers: { type: 'string' },
      'lease-seconds': { type: 'string' },
      'dedupe-days': { type: 'string' },
      'allow-private-urls': { type: 'boolean' },
      'public-url': { type: 'string' },
      'job-timeout': { type: 'string' },
      'item-timeout': { type: 'string' },
      'pixel-budget': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    })
    if (values.help) {
      console.log(HELP)
      return 0
    }
    const { database } = storageArgs({ database: values.database })
    const leaseSeconds = wholeNumberArg('--lease-seconds', values['lease-seconds'] as string | undefined, 1)
    const jobTimeout = wholeNumberArg('--job-timeout', values['job-timeout'] as string | undefined, 1)
    const itemTimeout = wholeNumberArg('--item-timeout', values['item-timeout'] as string | undefined, 1)
    server = createMegaOptimServer({
      database,
      workers: wholeNumberArg('--workers', values.workers as string | undefined, 1),
      leaseMs: leaseSeconds === undefined ? undefined : leaseSeconds * 1000,
      dedupeDays: wholeNumberArg('--dedupe-days', values['dedupe-days'] as string | undefined, 0),
      allowPrivateUrls: values['allow-private-urls'] === true,
      publicUrl: values['public-url'] as string | undefined,
      jobTimeoutMs: jobTimeout === undefined ? undefined : jobTimeout * 1000,
      itemTimeoutMs: itemTimeout === undefined ? undefined : itemTimeout * 1000,
      pixelBudget: wholeNumberArg('--pixel-budget', values['pixel-budget'] as string | undefined, 1),
    })
  } catch (error) {
    if (error instanceof UsageError || error instanceof TypeError) {
      console.error(`megaoptim worker: ${error.message}\nRun 'megaoptim worker --help' for the options.`)
      return 2
    }
    throw error
  }
  await server.work()
  console.log(`megaoptim worker: ${server.options.workers} worker(s) on ${redactUrl(server.options.database!)}`)
  return untilStopped('worker', () => server.close())
}
