import path from 'node:path'
import { parse, requiredArg, UsageError, wholeNumberArg } from './shared-args.ts'
import { generateApiKey } from '../server/keys.ts'
import { DuplicateAccountError } from '../server/store/types.ts'

const HELP = `Usage: megaoptim keys create --data-dir DIR --name NAME --email EMAIL --tokens N

Create an account on a self-hosted server and print its new API key (alone, on stdout).

Options:
  --data-dir DIR   the server's data directory (the same as for megaoptim serve)
  --name NAME      the account's name
  --email EMAIL    the account's email (one account per email)
  --tokens N       tokens to start with; -1 = unlimited
  -h, --help       show this help`

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
  let dataDir: string
  let name: string
  let email: string
  let tokens: number
  try {
    const { values } = parse(rest, {
      'data-dir': { type: 'string' },
      name: { type: 'string' },
      email: { type: 'string' },
      tokens: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    })
    if (values.help) {
      console.log(HELP)
      return 0
    }
    dataDir = path.resolve(requiredArg('--data-dir', values['data-dir'] as string | undefined))
    name = requiredArg('--name', values.name as string | undefined)
    email = requiredArg('--email', values.email as string | undefined)
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError(`--email must be an email address, got "${email}"`)
    tokens = wholeNumberArg('--tokens', requiredArg('--tokens', values.tokens as string | undefined), -1)!
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`megaoptim keys create: ${error.message}\nRun 'megaoptim keys --help' for the options.`)
    return 2
  }
  const { openSqliteStore } = await import('../server/store/sqlite.ts')
  const store = await openSqliteStore(dataDir)
  try {
    const apiKey = generateApiKey()
    store.createAccount({ apiKey, name, email, tokens })
    console.log(apiKey)
    return 0
  } catch (error) {
    if (error instanceof DuplicateAccountError) {
      console.error(`megaoptim keys create: ${error.message} Use another --email.`)
      return 1
    }
    throw error
  } finally {
    store.close()
  }
}
