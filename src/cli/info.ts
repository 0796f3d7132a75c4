/**
 * `megaoptim info`: the account name, email and tokens of MEGAOPTIM_API_KEY.
 */
import { parseArgs } from 'node:util'
import { MegaOptimClient } from '../client/client.ts'
import { isMegaOptimError } from '../client/errors.ts'
import { BackendError, selectBackend } from '../core/backend.ts'
import { type CliIo, formatTokens, noKeyMessage, processIo } from './shared-client.ts'

const HELP = `Usage: megaoptim info [--endpoint <url>] [--json]

Print the account name, email and tokens left for the key in MEGAOPTIM_API_KEY.

Options:
  --endpoint <url>   API base URL (default https://api.megaoptim.com/v1)
  --json             print JSON
  -h, --help         show this help`

export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: { endpoint: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values
  } catch (error) {
    io.stderr.write(`megaoptim info: ${(error as Error).message}\nRun 'megaoptim info --help' for the options.\n`)
    return 2
  }
  if (values.help) {
    io.stdout.write(`${HELP}\n`)
    return 0
  }
  let apiKey: string
  try {
    // The plugin's selector: an empty key is none, a malformed one is refused before any request.
    const { backend } = selectBackend({ env: io.env, ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}) })
    if (backend.kind === 'embedded') {
      io.stderr.write(`megaoptim info: ${noKeyMessage(values.endpoint)}\n`)
      return 2
    }
    apiKey = backend.apiKey.reveal()
  } catch (error) {
    if (!(error instanceof BackendError)) throw error
    io.stderr.write(`megaoptim info: ${error.message.replace(/^\[megaoptim\] /, '')}\n`)
    return 2
  }
  let client: MegaOptimClient
  try {
    client = new MegaOptimClient({ apiKey, endpoint: values.endpoint, maxAttempts: 3, deadline: 60_000 })
  } catch (error) {
    io.stderr.write(`megaoptim info: ${(error as Error).message}\n`)
    return 2
  }
  try {
    const info = await client.userInfo()
    if (values.json) io.stdout.write(`${JSON.stringify(info)}\n`)
    else io.stdout.write(`name:   ${info.name}\nemail:  ${info.email}\ntokens: ${formatTokens(info.tokens)}\n`)
    return 0
  } catch (error) {
    if (!isMegaOptimError(error)) throw error
    io.stderr.write(`megaoptim info: ${error.code}: ${error.message}\n`)
    return 1
  } finally {
    await client.close()
  }
}
