import { parse, requiredArg, UsageError, wholeNumberArg } from './shared-args.ts'
import { generateApiKey } from '../server/keys.ts'
import { DuplicateAccountError, type Store } from '../server/store/types.ts'
import { STORAGE_HELP, storageArgs } from './shared-storage.ts'

const HELP = `Usage: megaoptim keys create (--data-dir DIR | --database URL) --name NAME --email EMAIL --tokens N

Create an account on a self-hosted server and print its new API key (alone, on stdout).

Options:
  (the same storage as megaoptim serve)
${STORAGE_HELP}
  --name NAME              the account's name
  --email EMAIL            the account's email (one account per email)
  --tokens N               tokens to start with; -1 = unlimited
  -h, --help               show this help`

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(HELP)
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'create') {
    console.error(`megaoptim keys: unknown subcommand "${sub}"; the only one is "create".\nRun 'megaoptim keys --help' for the options.`)
    return 2
  }
  let storage: { dataDir?: string; database?: string }
  let name: string
  let email: string
  let tokens: number
  try {
    const { values } = parse(rest, {
      'data-dir': { type: 'string' },
      database: { type: 'string' },
      name: { type: 'string' },
      email: { type: 'string' },
      tokens: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    })
    if (values.help) {
      console.log(HELP)
      return 0
    }
    storage = storageArgs(values)
    name = requiredArg('--name', values.name as string | undefined)
    email = requiredArg('--email', values.email as string | undefined)
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError(`--email must be an email address, got "${email}"`)
    tokens = wholeNumberArg('--tokens', requiredArg('--tokens', values.tokens as string | undefined), -1)!
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`megaoptim keys create: ${error.message}\nRun 'megaoptim keys --help' for the options.`)
    return 2
  }
  const store = await openStore(storage)
  try {
    const apiKey = generateApiKey()
    await store.createAccount({ apiKey, name, email, tokens })
    console.log(apiKey)
    return 0
  } catch (error) {
    if (error instanceof DuplicateAccountError) {
      console.error(`megaoptim keys create: ${error.message} Use another --email.`)
      return 1
    }
    throw error
  } finally {
    await store.close()
  }
}

async function openStore({ dataDir, database }: { dataDir?: string; database?: string }): Promise<Store> {
  if (database !== undefined) {
    const { openPostgresStore } = await import('../server/store/postgres/store.ts')
    return openPostgresStore({ url: database, poolSize: 1 })
  }
  const { openSqliteStore } = await import('../server/store/sqlite.ts')
  return openSqliteStore(dataDir!)
}
