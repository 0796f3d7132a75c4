/**
 * The embedded default through the real client and the real in-process server: what the plugin sends it.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { ClientEvent } from '../../src/client/types.ts'
import { openOptimizer } from '../../src/core/optimizer.ts'
import { embeddedWorkers } from '../../src/server/embedded.ts'

const IMAGES = ['chelsea.png', 'green_palette.png', 'horse.png', 'page.png', 'palette_color.png', 'text.png']

describe('openOptimizer, embedded', () => {
  it('sends one image per job and keeps no more jobs in flight than the server works on, plus one', async () => {
    const events: ClientEvent[] = []
    const optimizer = await openOptimizer({ backend: { kind: 'embedded' }, concurrency: undefined, rateLimit: undefined, retries: 4, onEvent: (e) => events.push(e) })
    onTestFinished(() => optimizer.close())
    const inputs = await Promise.all(
      IMAGES.map(async (name) => ({ name, data: new Uint8Array(await readFile(path.resolve('test/fixtures/images', name))) })),
    )
    const outcomes = await optimizer.optimize(inputs, { compression: 'lossless' })
    expect(outcomes.map((o) => o.status).filter((s) => s === 'failed')).toEqual([])

    const sent = events.filter((e): e is Extract<ClientEvent, { type: 'sent' }> => e.type === 'sent' && e.endpoint === '/optimize')
    expect(sent.map((e) => e.names.length)).toEqual(IMAGES.map(() => 1))
    // 'done' is told just after a job's slot is freed, so the next job may be sent a moment before it.
    let inFlight = 0
    let most = 0
    for (const e of events) {
      if (e.type === 'sent' && e.endpoint === '/optimize') most = Math.max(most, ++inFlight)
      if (e.type === 'done') inFlight--
    }
    expect(most).toBeLessThanOrEqual(embeddedWorkers() + 2)
  })
})
