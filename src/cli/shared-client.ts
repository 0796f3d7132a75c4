/**
 * What `megaoptim optimize` and `megaoptim info` share: where output goes, how the API key and endpoint are
 * found, and small formatting helpers. The key is read from the environment only and never printed.
 */
import { DEFAULT_ENDPOINT } from '../client/options.ts'

/** Where a command writes; tests pass their own. */
export interface CliIo {
  env: NodeJS.ProcessEnv
  /** Base of relative paths and of the default cache folder; the process's when absent. */
  cwd?: string
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number }
}

export const processIo: CliIo = { env: process.env, stdout: process.stdout, stderr: process.stderr }

export function noKeyMessage(endpoint: string | undefined): string {
  const where = endpoint ? `the server at ${endpoint}` : `the MegaOptim API (${DEFAULT_ENDPOINT})`
  return [
    `no API key: ${where} needs one. Set MEGAOPTIM_API_KEY in the environment, for example:`,
    '  export MEGAOPTIM_API_KEY=<your 32-character key>      (bash, zsh)',
    '  $env:MEGAOPTIM_API_KEY = "<your key>"                 (PowerShell)',
    'Get a key from your MegaOptim dashboard (https://megaoptim.com), or for a self-hosted server run',
    "`megaoptim keys create ...` and pass the server with --endpoint. The key is never printed.",
  ].join('\n')
}

export function formatTokens(tokens: number | null): string {
  if (tokens === null) return 'unknown'
  return tokens === -1 ? 'unlimited' : String(tokens)
}
