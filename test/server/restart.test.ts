import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { openSqliteStore } from '../../src/server/store/sqlite.ts'
import { createMegaOptimServer } from '../../src/server/server.ts'
import { call, files, fixture, tempDir, waitResult } from './helpers.ts'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const children = new Set<ChildProcess>()
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
})

function cli(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = cli(args)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, stdout, stderr }
}

/** Starts `megaoptim serve` and resolves with its base URL once it prints the address. */
async function serve(dataDir: string, extra: string[] = []): Promise<{ child: ChildProcess; base: string; stderr: () => string }> {
  const child = cli(['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, ...extra])
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const base = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)))
  })
  return { child, base, stderr: () => stderr }
}

async function untilRunning(base: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const status = await call(`${base}/status`)
    if (status.json.jobs.running >= 1) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('the job never started running')
}

/** Until an image is being worked on (its try counted), not merely claimed. */
async function untilWorking(base: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const status = await call(`${base}/status`)
    if (status.json.jobs.pixels?.used > 0) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('no image was ever worked on')
}

const exited = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    else child.on('exit', (code, signal) => resolve({ code, signal }))
  })

describe('megaoptim keys create', () => {
  it('prints the new key alone on stdout; usage errors are exact', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const ok = await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'Team', '--email', 'team@example.com', '--tokens', '10'])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^[A-Za-z0-9]{32}\n$/)
    // Only the key's hash is stored: a copied data dir gives away no usable key.
    const key = ok.stdout.trim()
    for (const file of readdirSync(tmp.dir, { recursive: true }) as string[]) {
      const full = path.join(tmp.dir, file)
      if (statSync(full).isFile()) expect(readFileSync(full).includes(key), file).toBe(false)
    }
    const dup = await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'Team', '--email', 'team@example.com', '--tokens', '10'])
    expect(dup.code).toBe(1)
    expect(dup.stderr).toBe('megaoptim keys create: An account with the email team@example.com already exists. Use another --email.\n')
    const bad = await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'X', '--email', 'x@example.com', '--tokens', 'lots'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe(`megaoptim keys create: --tokens must be a whole number >= -1, got "lots"\nRun 'megaoptim keys --help' for the options.\n`)
    const missing = await run(['keys', 'create', '--name', 'X'])
    expect(missing.stderr).toBe(
      `megaoptim keys create: --data-dir or --database (or MEGAOPTIM_DATABASE_URL) is required\nRun 'megaoptim keys --help' for the options.\n`,
    )
    const unknown = await run(['serve', '--data-dir', tmp.dir, '--port', 'http'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe(`megaoptim serve: --port must be a whole number from 0 to 65535, got "http"\nRun 'megaoptim serve --help' for the options.\n`)
  })
})

describe('megaoptim serve flags', () => {
  it('--signup-tokens sets what POST /v1/register gives (the default is none)', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const server = await serve(tmp.dir, ['--signup-tokens', '3'])
    const form = (email: string): Record<string, string> => ({
      first_name: 'Ada',
      last_name: 'Lovelace',
      email,
      password: 'correct horse',
      password_confirmation: 'correct horse',
      terms_and_conditions: 'yes',
    })
    const answer = await call(`${server.base}/v1/register`, { body: form('ada@example.com') })
    expect(answer.json.result.tokens).toBe(3)
    server.child.kill('SIGTERM')
    await exited(server.child)
    const plain = await serve(tmp.dir)
    const other = await call(`${plain.base}/v1/register`, { body: form('bob@example.com') })
    expect(other.json.result.tokens).toBe(0)
  })

  it('--rate-limit and --allow-private-urls reach the server', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const key = (await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'T', '--email', 't@example.com', '--tokens', '5'])).stdout.trim()
    const server = await serve(tmp.dir, ['--rate-limit', '1', '--allow-private-urls'])
    expect((await call(`${server.base}/v1/users/info`, { key })).json.code).toBe(200)
    expect((await call(`${server.base}/v1/users/info`, { key })).json.code).toBe(429)
    const local = await call(`${server.base}/v1/optimize`, {
      key,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file', callback_url: `${server.base}/ping` }),
    })
    expect(local.json.code).toBe(202)
    // A key created while the server runs works at once (one SQLite file, two processes).
    const late = (await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'Late', '--email', 'late@example.com', '--tokens', '-1'])).stdout.trim()
    expect((await call(`${server.base}/v1/users/info`, { key: late })).json.result).toEqual({ name: 'Late', email: 'late@example.com', tokens: -1 })
    server.child.kill('SIGINT')
    expect(await exited(server.child)).toEqual({ code: 0, signal: null })
  })
})

describe('restarts: no job lost or left hanging', () => {
  it('a server killed (SIGKILL) mid-job runs the job again after a restart, charging once', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const key = (await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'T', '--email', 't@example.com', '--tokens', '10'])).stdout.trim()
    const first = await serve(tmp.dir, ['--job-delay', '600000'])
    const submitted = await call(`${first.base}/v1/optimize`, {
      key,
      body: files({ file1: ['horse.png', fixture('horse.png')], file2: ['truncated.jpg', fixture('truncated.jpg')] }, { type: 'files' }),
    })
    expect(submitted.json.code).toBe(202)
    const id = submitted.json.process_id as string
    await untilRunning(first.base)
    first.child.kill('SIGKILL')
    expect(await exited(first.child)).toEqual({ code: null, signal: 'SIGKILL' })
    // The uploads were persisted before the 202.
    expect(existsSync(path.join(tmp.dir, 'blobs', 'uploads', id, '0'))).toBe(true)

    const second = await serve(tmp.dir)
    // One server per data dir: a second one refuses to start while this one runs.
    const third = await run(['serve', '--port', '0', '--data-dir', tmp.dir])
    expect(third.code).toBe(1)
    expect(third.stderr).toContain(`Another megaoptim server (pid ${second.child.pid}) is using ${tmp.dir}`)
    const done = await waitResult(`${second.base}/v1`, id, key)
    expect(done.json).toMatchObject({ status: 'ok', code: 200, id })
    expect(done.json.result.map((i: { success: number }) => i.success)).toEqual([1, 0])
    expect(done.json.result[0].url.startsWith(second.base)).toBe(true)
    expect(done.json.user.tokens).toBe(9)
    expect(existsSync(path.join(tmp.dir, 'blobs', 'uploads', id))).toBe(false)
    second.child.kill('SIGTERM')
    expect(await exited(second.child)).toEqual({ code: 0, signal: null })
  })

  it('SIGTERM stops cleanly with a job in flight; it stays persisted and completes after a restart', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const key = (await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'T', '--email', 't@example.com', '--tokens', '-1'])).stdout.trim()
    const first = await serve(tmp.dir, ['--job-delay', '600000'])
    const submitted = await call(`${first.base}/v1/optimize`, {
      key,
      body: files({ file: ['horse.png', fixture('horse.png')] }, { type: 'file' }),
    })
    expect(submitted.json.code).toBe(202)
    await untilRunning(first.base)
    first.child.kill('SIGTERM')
    expect(await exited(first.child)).toEqual({ code: 0, signal: null })
    expect(first.stderr()).toContain('megaoptim serve: stopped')

    const second = await serve(tmp.dir)
    const done = await waitResult(`${second.base}/v1`, submitted.json.process_id, key)
    expect(done.json.result[0].success).toBe(1)
    second.child.kill('SIGTERM')
    await exited(second.child)
  })

  it('kill -9 twice with 5 jobs of 5 images queued: a try counts only once a worker starts an image, and every job completes', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const key = (await run(['keys', 'create', '--data-dir', tmp.dir, '--name', 'T', '--email', 't@example.com', '--tokens', '-1'])).stdout.trim()
    // One worker that holds its first image "running" until the kill: the repro's timing without a clock.
    const first = await serve(tmp.dir, ['--workers', '1', '--job-delay', '600000'])
    const ids: string[] = []
    for (let j = 0; j < 5; j++) {
      const form = files(Object.fromEntries([1, 2, 3, 4, 5].map((n) => [`file${n}`, [`p${j}-${n}.png`, fixture('horse.png')]])), { type: 'files' })
      const submitted = await call(`${first.base}/v1/optimize`, { key, body: form })
      expect(submitted.json.code).toBe(202)
      ids.push(submitted.json.process_id)
    }
    await untilWorking(first.base)
    first.child.kill('SIGKILL')
    await exited(first.child)
    const second = await serve(tmp.dir, ['--workers', '1', '--job-delay', '600000'])
    expect(second.stderr()).toContain('unfinished jobs from a previous run: 5 resumed')
    await untilWorking(second.base)
    second.child.kill('SIGKILL')
    await exited(second.child)

    // Two crashes, both on the oldest job's first image: that is the only try ever counted.
    const store = await openSqliteStore(tmp.dir)
    const tries = ids.map((id) => store.jobItems(id).map((i) => i.tries))
    store.close()
    expect(tries).toEqual([[2, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])

    const third = await serve(tmp.dir, ['--workers', '1'])
    const answers = await Promise.all(ids.map((id) => waitResult(`${third.base}/v1`, id, key)))
    expect(third.stderr()).toContain('unfinished jobs from a previous run: 5 resumed')
    expect(third.stderr()).not.toContain('given up')
    expect(answers.map((a) => a.json.code)).toEqual([200, 200, 200, 200, 200])
    expect(answers.map((a) => a.json.result.map((i: { success: number }) => i.success))).toEqual(Array(5).fill([1, 1, 1, 1, 1]))
    third.child.kill('SIGTERM')
    await exited(third.child)
  }, 300_000)

  it('an image that stopped the server maxItemTries times is given up (success 0, no token); the rest of its job still runs', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const store = await openSqliteStore(tmp.dir)
    const account = store.createAccount({ apiKey: 'K'.repeat(32), name: 'T', email: 't@example.com', tokens: 5 })
    const id = '11111111-2222-4333-8444-555555555555'
    await store.blobs.put(`uploads/${id}/0`, fixture('horse.png'))
    await store.blobs.put(`uploads/${id}/1`, fixture('horse.png'))
    expect(
      store.submitJob(
        {
          id,
          accountId: account.id,
          status: 'queued',
          params: { compression: 'intelligent', webp: false, cmykToRgb: true, keepExif: false, maxWidth: 0, maxHeight: 0, callbackUrl: null, httpUser: null, httpPass: null },
          inputs: [
            { kind: 'file', name: 'bomb.png', blob: `uploads/${id}/0` },
            { kind: 'file', name: 'horse.png', blob: `uploads/${id}/1` },
          ],
          reserved: 2,
          result: null,
          error: null,
          createdAt: Date.now(),
          finishedAt: null,
        },
        2,
      ),
    ).toBe(true)
    // Three runs of the first image started and never finished: what three crashes leave behind.
    for (let crash = 0; crash < 3; crash++) {
      const claimed = store.claimNextItem()!
      expect(claimed.index).toBe(0)
      expect(store.startItem(id, 0)).toBe(crash + 1)
      store.resetInterruptedItems()
    }
    store.close()

    const server = createMegaOptimServer({ dataDir: tmp.dir })
    onTestFinished(() => server.close())
    const base = await server.listen()
    const answer = await waitResult(`${base}/v1`, id, 'K'.repeat(32))
    expect(answer.json.code).toBe(200)
    expect(answer.json.result[0]).toMatchObject({ success: 0, file_name: 'bomb.png', error: expect.stringContaining('stopped 3 times while optimizing bomb.png') })
    expect(answer.json.result[1]).toMatchObject({ success: 1, file_name: 'horse.png' })
    expect((await call(`${base}/v1/users/info`, { key: 'K'.repeat(32) })).json.result.tokens).toBe(4)
    expect(existsSync(path.join(tmp.dir, 'blobs', 'uploads', id))).toBe(false)
  })
})
