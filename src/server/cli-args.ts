import { parseArgs, type ParseArgsConfig } from 'node:util'

/** A usage mistake on the command line: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false })
  } catch (error) {
    throw new UsageError(`${(error as Error).message}`, { cause: error })
  }
}

export function wholeNumberArg(flag: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined
  if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`
    throw new UsageError(`${flag} must be a whole number ${range}, got "${raw}"`)
  }
  return Number(raw)
}

export function requiredArg(flag: string, raw: string | undefined): string {
  if (raw === undefined || raw === '') throw new UsageError(`${flag} is required`)
  return raw
}
