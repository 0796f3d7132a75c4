/**
 * better-sqlite3 is an optional peer dependency: only `serve --data-dir` and `keys --data-dir` load it.
 * Real processes in which it cannot be found (a resolve hook hides it) show what a plugin user gets.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, test } from 'vitest'
import { loadDatabase } from '../../src/server/store/sqlite.ts'

const HIDE = './test/fixtures/hooks/hide-better-sqlite3.mjs'

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--import', HIDE, 'src/cli.ts', ...args], {
      env: { ...process.env, MEGAOPTIM_API_KEY: '', ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('without better-sqlite3', () => {
  test('keys create --data-dir says in one line what to install, instead of a stack of binding errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'megaoptim-nosqlite-'))
    const { code, stderr } = await cli(['keys', 'create', '--data-dir', dir, '--name', 'a', '--email', 'a@example.com', '--tokens', '1'])
    expect(code).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toMatch(/better-sqlite3 is not installed.*npm install better-sqlite3@12/)
  }, 60_000)

  test('the embedded default does not need it: optimize with no key works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'megaoptim-nosqlite-'))
    cpSync('test/fixtures/images/horse.png', join(dir, 'horse.png'))
    const before = readFileSync(join(dir, 'horse.png')).length
    const { code, stderr } = await cli(['optimize', dir, '--in-place', '--no-cache', '--compression', 'lossless'])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(readFileSync(join(dir, 'horse.png')).length).toBeLessThan(before)
  }, 60_000)

  test('installed but its native part does not load: the first line of the reason and how to rebuild', async () => {
    const bindings = new Error('Could not locate the bindings file. Tried:\n → /a/build/better_sqlite3.node\n → /b/build/better_sqlite3.node')
    const error = (await loadDatabase(() => Promise.reject(bindings)).catch((e: unknown) => e)) as Error
    expect(error.message).toBe(
      'better-sqlite3 is installed but its native part could not be loaded (Could not locate the bindings file. Tried:). ' +
        'Rebuild it for this Node version: npm rebuild better-sqlite3 (building from source needs python and a C++ compiler).',
    )
  })
})
