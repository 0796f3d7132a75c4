/**
 * What `megaoptim optimize` and `megaoptim info` share: where output goes, how the API key and endpoint are
 * found, and small formatting helpers. The key is read from the environment only and never printed.
 */
import { DEFAULT_ENDPOINT } from '../client/options.ts'

/** Where a command writes; tests pass their own. */
export interface CliIo {
  env: NodeJS.ProcessEnv
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number }
}

export const processIo: CliIo = { env: process.env, stdout: process.stdout, stderr: process.stderr }

export class UsageError extends Error {
  override name = 'UsageError'
}

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

/** A whole number option (`--max-width 800`), with an exact message. */
export function wholeArg(flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`
    throw new UsageError(`${flag} must be a whole number ${range}, got "${value}"`)
  }
  return n
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(2)} MiB`
}

export function formatTokens(tokens: number | null): string {
  if (tokens === null) return 'unknown'
  return tokens === -1 ? 'unlimited' : String(tokens)
}
