#!/usr/bin/env node
import { ownVersion } from './core/optimizer.ts'

/**
 * The `megaoptim` command. Each subcommand lives in `src/cli/<name>.ts` and is loaded only when used,
 * so `megaoptim info` never loads sharp or SQLite.
 */
const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  optimize: { summary: 'optimize every image under a folder (JPEG, PNG, GIF, WebP, SVG)', load: () => import('./cli/optimize.ts') },
  info: { summary: 'print the account name, email and tokens left', load: () => import('./cli/info.ts') },
  serve: { summary: 'run the MegaOptim-compatible server', load: () => import('./cli/serve.ts') },
  keys: { summary: 'manage API keys of a self-hosted server', load: () => import('./cli/keys.ts') },
  worker: { summary: 'optimize the images queued in a shared PostgreSQL, without the API', load: () => import('./cli/worker.ts') },
}

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  return `Usage: megaoptim <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'megaoptim <command> --help' for a command's options, 'megaoptim --version' for the version.`
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-v') {
    console.log(ownVersion())
    return 0
  }
  if (!name || name === '--help' || name === '-h') {
    console.log(usage())
    return name ? 0 : 1
  }
  const command = commands[name]
  if (!command) {
    console.error(`megaoptim: unknown command "${name}"\n\n${usage()}`)
    return 2
  }
  const mod = await command.load()
  return mod.run(rest)
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    console.error(`megaoptim: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  },
)
