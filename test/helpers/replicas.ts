/** `megaoptim` child processes (through tsx) for the replica tests and the replicas benchmark. */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const children = new Set<ChildProcess>()

/** SIGKILLs every child still running (call in afterEach/afterAll). */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

export async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = cli(args, env)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, stdout, stderr }
}

export interface Replica {
  child: ChildProcess
  /** `http://127.0.0.1:PORT` */
  base: string
  stderr(): string
}

/** Starts `megaoptim serve --database URL` on a free loopback port; resolves once it listens. */
export async function replica(database: string, extra: string[] = []): Promise<Replica> {
  const child = cli(['serve', '--host', '127.0.0.1', '--port', '0', '--database', database, ...extra])
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

/** Starts `megaoptim worker --database URL`; resolves once it runs. */
export async function worker(database: string, extra: string[] = []): Promise<Replica> {
  const child = cli(['worker', '--database', database, ...extra])
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('worker(s) on')) resolve()
    })
    child.on('exit', (code) => reject(new Error(`worker exited with ${code}: ${stderr}`)))
  })
  return { child, base: '', stderr: () => stderr }
}

export const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
