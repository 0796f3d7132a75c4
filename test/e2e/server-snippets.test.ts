/**
 * The README's server snippets, for real: Debian's nginx, Apache and Caddy each serve the built fixture
 * app with exactly the snippets the README shows, and a request for a PNG gets its WebP sibling when
 * `Accept` lists image/webp, the PNG otherwise, both with `Vary: Accept`. Each server is skipped, with a
 * message, when it is not installed here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import { startApiServer } from './api-server.ts'
import { buildWith, cleanTmp, fileTree, prepareApp } from './harness.ts'

const SERVERS = { nginx: '/usr/sbin/nginx', apache: '/usr/sbin/apache2', caddy: '/usr/bin/caddy' }
const README = fileURLToPath(new URL('../../README.md', import.meta.url))

for (const [name, binary] of Object.entries(SERVERS)) {
  if (!existsSync(binary)) console.warn(`[server snippets] ${name} skipped: ${binary} is not installed here (CI installs all three).`)
}

/** The README's fenced blocks of one language, in order. */
async function snippets(language: string): Promise<string[]> {
  const text = await readFile(README, 'utf8')
  return [...text.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!)
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

async function waitForPort(port: number, child: ChildProcess, log: () => Promise<string>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${await log()}`)
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`the server did not listen on ${port}: ${await log()}`)
}

describe('README server snippets', () => {
  let api: MegaOptimServerHandle
  let root: string
  let outDir: string
  let png: string
  beforeAll(async () => {
    if (!Object.values(SERVERS).some((binary) => existsSync(binary))) return
    const { server, apiKey } = await startApiServer()
    api = server
    root = await prepareApp('snippets-')
    // Apache serves as www-data: the build must be readable by others.
    await chmod(root, 0o755)
    ;({ outDir } = await buildWith('vite', root, { apiKey, endpoint: api.endpoint, compression: 'lossless', webp: true, cache: false }))
    png = (await fileTree(outDir)).find((f) => /^assets\/horse-.*\.png$/.test(f))!
    expect(await fileTree(outDir)).toContain(`${png}.webp`)
  })
  afterAll(async () => {
    await api?.close()
    await cleanTmp(['snippets-'])
  })

  /** Starts the server with `args`, checks the negotiation on `port`, stops it; returns what it answered. */
  async function negotiate(name: string, binary: string, args: string[], port: number, errorLog: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const child = spawn(binary, args, { stdio: 'ignore', env })
    try {
      await waitForPort(port, child, () => readFile(errorLog, 'utf8').catch(() => ''))
      const url = `http://127.0.0.1:${port}/${png}`
      const webp = await fetch(url, { headers: { accept: 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8' } })
      expect(webp.status).toBe(200)
      expect(webp.headers.get('content-type')).toBe('image/webp')
      expect(webp.headers.get('vary')).toMatch(/accept/i)
      expect(Buffer.from(await webp.arrayBuffer()).equals(await readFile(path.join(outDir, `${png}.webp`)))).toBe(true)
      const original = await fetch(url, { headers: { accept: 'image/png,image/*;q=0.8' } })
      expect(original.headers.get('content-type')).toBe('image/png')
      expect(original.headers.get('vary')).toMatch(/accept/i)
      expect(Buffer.from(await original.arrayBuffer()).equals(await readFile(path.join(outDir, png)))).toBe(true)
      // An image without a sibling is served as it is, whatever Accept says.
      const gif = (await fileTree(outDir)).find((f) => f.endsWith('.gif'))!
      const plain = await fetch(`http://127.0.0.1:${port}/${gif}`, { headers: { accept: 'image/webp' } })
      expect(plain.status).toBe(200)
      expect(plain.headers.get('content-type')).toBe('image/gif')
      console.log(`[server snippets] ${name}: /${png} -> ${webp.headers.get('content-type')} with Accept image/webp, ${original.headers.get('content-type')} without; Vary: ${original.headers.get('vary')}`)
    } finally {
      child.kill('SIGTERM')
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)))
    }
  }

  it.skipIf(!existsSync(SERVERS.nginx))('nginx', async () => {
    const [httpSnippet, serverSnippet] = await snippets('nginx')
    expect(httpSnippet).toContain('in http {}')
    expect(serverSnippet).toContain('in the server {}')
    const prefix = path.join(root, 'nginx')
    await mkdir(path.join(prefix, 'logs'), { recursive: true })
    const port = await freePort()
    const conf = path.join(prefix, 'nginx.conf')
    await writeFile(
      conf,
      `daemon off;\nmaster_process off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents {}\nhttp {\n` +
        `  include /etc/nginx/mime.types;\n  access_log off;\n` +
        ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${prefix}/${t};\n`).join('') +
        `${httpSnippet}\n  server {\n    listen 127.0.0.1:${port};\n    root ${outDir};\n${serverSnippet}\n  }\n}\n`,
    )
    await negotiate('nginx', SERVERS.nginx, ['-p', prefix, '-c', conf], port, path.join(prefix, 'logs/error.log'))
  })

  it.skipIf(!existsSync(SERVERS.apache))('Apache', async () => {
    const [snippet] = await snippets('apache')
    const prefix = path.join(root, 'apache')
    await mkdir(prefix, { recursive: true })
    const port = await freePort()
    const conf = path.join(prefix, 'httpd.conf')
    const modules = ['mpm_event', 'authz_core', 'mime', 'dir', 'rewrite', 'headers']
    await writeFile(
      conf,
      modules.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so\n`).join('') +
        `ServerName 127.0.0.1\nListen 127.0.0.1:${port}\nUser www-data\nGroup www-data\nPidFile ${prefix}/httpd.pid\n` +
        `DefaultRuntimeDir ${prefix}\nErrorLog ${prefix}/error.log\nTypesConfig /etc/mime.types\nDocumentRoot ${outDir}\n` +
        `<Directory ${outDir}>\nRequire all granted\nAllowOverride None\n${snippet}\n</Directory>\n`,
    )
    await negotiate('Apache', SERVERS.apache, ['-X', '-f', conf], port, path.join(prefix, 'error.log'))
  })

  it.skipIf(!existsSync(SERVERS.caddy))('Caddy', async () => {
    const [snippet] = await snippets('caddy')
    const prefix = path.join(root, 'caddy')
    await mkdir(prefix, { recursive: true })
    const port = await freePort()
    const conf = path.join(prefix, 'Caddyfile')
    await writeFile(conf, `{\n  admin off\n  auto_https off\n}\nhttp://127.0.0.1:${port} {\n  root * ${outDir}\n${snippet}\n}\n`)
    const env = { ...process.env, XDG_DATA_HOME: prefix, XDG_CONFIG_HOME: prefix, HOME: prefix }
    await negotiate('Caddy', SERVERS.caddy, ['run', '--config', conf, '--adapter', 'caddyfile'], port, path.join(prefix, 'none'), env)
  })
})
