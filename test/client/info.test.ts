/**
 * `megaoptim info` end to end against the loopback fake API (`megaoptim optimize` is in test/cli/).
 */
import { afterEach, describe, expect, test } from 'vitest'
import { run as runInfo } from '../../src/cli/info.ts'
import type { CliIo } from '../../src/cli/shared-client.ts'
import { startFakeApi, type FakeApi, type FakeApiOptions } from '../helpers/fake-api.ts'

let api: FakeApi | undefined
afterEach(async () => {
  await api?.close()
  api = undefined
})

const KEY = 'CLIkey0123456789abcdefghijklmnop'

function io(env: NodeJS.ProcessEnv = { MEGAOPTIM_API_KEY: KEY }): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    env,
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t), isTTY: false },
    out: () => out,
    err: () => err,
  }
}

async function fake(options: FakeApiOptions = {}) {
  api = await startFakeApi({ apiKey: KEY, ...options })
  return api
}

describe('megaoptim info', () => {
  test('prints the account name, email and tokens', async () => {
    const api = await fake({ tokens: 1234 })
    const cli = io()
    expect(await runInfo(['--endpoint', api.endpoint], cli)).toBe(0)
    expect(cli.out()).toBe('name:   Fake User\nemail:  fake@example.test\ntokens: 1234\n')
    const json = io()
    expect(await runInfo(['--endpoint', api.endpoint, '--json'], json)).toBe(0)
    expect(JSON.parse(json.out())).toEqual({ name: 'Fake User', email: 'fake@example.test', tokens: 1234 })
  })

  test('a wrong key exits 1 with the reason and the fix, never the key', async () => {
    const api = await fake()
    const cli = io({ MEGAOPTIM_API_KEY: 'WRONGkey0123456789abcdefghijklmn' })
    expect(await runInfo(['--endpoint', api.endpoint], cli)).toBe(1)
    expect(cli.err()).toMatch(/MEGAOPTIM_AUTH: .*does not know this API key.*MEGAOPTIM_API_KEY/)
    expect(cli.err()).not.toContain('WRONGkey')
  })

  test('a malformed key is refused before any request, without echoing it', async () => {
    const api = await fake()
    const cli = io({ MEGAOPTIM_API_KEY: 'my key' })
    expect(await runInfo(['--endpoint', api.endpoint], cli)).toBe(2)
    expect(cli.err()).toMatch(/MEGAOPTIM_API_KEY is not a valid API key: it contains a space/)
    expect(cli.err()).not.toContain('my key')
    expect(api.requests).toHaveLength(0)
  })

  test('no key: exit 2 and how to set it', async () => {
    const cli = io({})
    expect(await runInfo([], cli)).toBe(2)
    expect(cli.err()).toContain('MEGAOPTIM_API_KEY')
  })
})
