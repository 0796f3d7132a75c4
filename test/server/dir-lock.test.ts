import net from 'node:net'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createMegaOptimServer } from '../../src/server.ts'
import { lockDataDir } from '../../src/server/dir-lock.ts'
import { tempDir } from './helpers.ts'


describe('data-dir lock', () => {
  it('takes over a stale lock naming our own pid (pid 1 again after a container restart)', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const file = path.join(tmp.dir, 'server.pid')
    writeFileSync(file, String(process.pid))
    const unlock = await lockDataDir(tmp.dir)
    expect(readFileSync(file, 'utf8')).toBe(String(process.pid))
    await unlock()
    expect(existsSync(file)).toBe(false)
  })

  it('still refuses a second lock of the same dir from this process', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const unlock = await lockDataDir(tmp.dir)
    onTestFinished(unlock)
    await expect(lockDataDir(tmp.dir)).rejects.toThrow(`Another megaoptim server (pid ${process.pid}) is using ${tmp.dir}`)
  })

  it('refuses a lock held by another live process', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    // The parent of the test process is alive and is not us.
    writeFileSync(path.join(tmp.dir, 'server.pid'), String(process.ppid))
    await expect(lockDataDir(tmp.dir)).rejects.toThrow(`Another megaoptim server (pid ${process.ppid})`)
  })

  it('listen() takes the lock before it opens or migrates the database', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    writeFileSync(path.join(tmp.dir, 'server.pid'), String(process.ppid))
    const server = createMegaOptimServer({ dataDir: tmp.dir })
    await expect(server.listen({ host: '127.0.0.1', port: 0 })).rejects.toThrow(/Another megaoptim server/)
    await server.close()
    expect(readdirSync(tmp.dir)).toEqual(['server.pid'])
  })

  it('a database that cannot be opened releases the lock again', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    writeFileSync(path.join(tmp.dir, 'megaoptim.sqlite'), 'this is not a database'.repeat(200))
    const server = createMegaOptimServer({ dataDir: tmp.dir })
    await expect(server.listen({ host: '127.0.0.1', port: 0 })).rejects.toThrow(/not a database/)
    expect(existsSync(path.join(tmp.dir, 'server.pid'))).toBe(false)
    await server.close()
  })

  it('a port already in use closes the database and releases the lock; a later listen() works', async () => {
    const tmp = await tempDir()
    onTestFinished(tmp.remove)
    const busy = net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as net.AddressInfo).port
    const server = createMegaOptimServer({ dataDir: tmp.dir })
    onTestFinished(() => server.close())
    try {
      await expect(server.listen({ host: '127.0.0.1', port })).rejects.toThrow(/EADDRINUSE/)
    } finally {
      await new Promise((resolve) => busy.close(resolve))
    }
    expect(existsSync(path.join(tmp.dir, 'server.pid'))).toBe(false)
    // The same handle can try again, and the data dir is usable.
    const base = await server.listen({ host: '127.0.0.1', port: 0 })
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    await server.createAccount({ name: 'A', email: 'a@example.com', tokens: 1 })
  })
})
