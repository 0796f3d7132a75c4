import { parseArgs, type ParseArgsConfig } from 'node:util'

/** A usage mistake on the command line: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  // `--tokens -1` (unlimited) must read as a value, not as an option "-1".
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const next = argv[i + 1]
    if (arg.startsWith('--') && !arg.includes('=') && next !== undefined && /^-\d+$/.test(next)) {
      args.push(`${arg}=${next}`)
      i++
    } else args.push(arg)
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false })
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
