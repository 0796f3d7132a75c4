/**
 * A build against an API that accepts connections and never answers: one budget (`timeout`) for every
 * phase, a progress line while waiting, every original kept, and a summary that names the API.
 */
import { afterEach, expect, test } from 'vitest'
import { resolveOptions } from '../../src/core/options.ts'
import { BuildSession } from '../../src/core/pipeline.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { distinctPngs } from '../client/_fixtures.ts'

let api: FakeApi | undefined
afterEach(async () => {
  await api?.close()
  api = undefined
})

function capture() {
  const info: string[] = []
  const warn: string[] = []
  return { info, warn, logger: { info: (m: string) => void info.push(m), warn: (m: string) => void warn.push(m) } }
}

test('bundled assets then public/: one 1.5 s budget for both, progress meanwhile, originals kept, the API named', async () => {
  api = await startFakeApi()
  api.inject('optimize', { kind: 'hang' }, { times: 1000 })
  api.inject('result', { kind: 'hang' }, { times: 1000 })
  const options = resolveOptions({ apiKey: api.apiKey, endpoint: api.endpoint, cache: false, timeout: 1500, retries: 4 })
  const out = capture()
  const session = new BuildSession(options, { logger: out.logger, progressEveryMs: 200 })
  const [bundled, publicDir] = [distinctPngs(7), distinctPngs(3, 'green_palette.png')]

  const first = await session.process(bundled.map((p) => ({ fileName: `assets/${p.name}`, data: p.data })))
  const sentInFirstPhase = api.of("optimize").length
  const second = await session.process(publicDir.map((p) => ({ fileName: p.name, data: p.data })))
  await session.finish()

  for (const [result, input] of [...first.map((r, i) => [r, bundled[i]!] as const), ...second.map((r, i) => [r, publicDir[i]!] as const)]) {
    expect(result.changed).toBe(false)
    expect(result.data).toBe(input.data)
  }
  // Two batches (5 + 2), each on the wire once: the budget ended before any retry could be sent.
  expect(sentInFirstPhase).toBe(2)
  // The public/ phase found the budget spent and sent nothing.
  expect(api.of('optimize')).toHaveLength(2)

  const progress = out.info.filter((l) => /\d+\/7 images done, [\d.]+ s waiting on the API; originals are kept after 1\.5 s/.test(l))
  expect(progress.length).toBeGreaterThanOrEqual(1)
  const summary = out.warn.join('\n')
  expect(summary).toMatch(`the self-hosted API at ${api.endpoint} was unresponsive: no answer within 1.5 s, so 10 images kept their original bytes`)
  expect(summary).toMatch(/raise timeout \(now 1500 ms\)/)
  expect(summary).not.toMatch(/requestTimeout|maxAttempts/)
})

test('a responsive API: no unresponsive line, and retries is what the client tries again', async () => {
  api = await startFakeApi()
  api.inject('optimize', { kind: 'code', code: 500 }, { times: 100 })
  const options = resolveOptions({ apiKey: api.apiKey, endpoint: api.endpoint, cache: false, retries: 2 })
  const out = capture()
  const session = new BuildSession(options, { logger: out.logger, progress: false })
  await session.process(distinctPngs(2).map((p) => ({ fileName: p.name, data: p.data })))
  await session.finish()
  // 1 try + 2 retries.
  expect(api.of('optimize')).toHaveLength(3)
  const warnings = out.warn.join('\n')
  expect(warnings).not.toMatch(/unresponsive/)
  expect(warnings).toMatch(/tried 3 times over [\d.]+ s/)
})

test('an API that keeps answering is never cut: the budget is for silence, not for work', async () => {
  // Three jobs one after the other, 0.7 s each: 2.1 s of work against a 1 s budget.
  api = await startFakeApi({ processingMs: 700 })
  const options = resolveOptions({ apiKey: api.apiKey, endpoint: api.endpoint, cache: false, timeout: 1000, concurrency: 1, rateLimit: 60_000 })
  const out = capture()
  const session = new BuildSession(options, { logger: out.logger, progress: false })
  const inputs = distinctPngs(11)
  const started = Date.now()
  const results = await session.process(inputs.map((p) => ({ fileName: p.name, data: p.data })))
  await session.finish()
  expect(Date.now() - started).toBeGreaterThan(1000)
  expect(api.of('optimize')).toHaveLength(3)
  // Every result was fetched (the fake API's bytes then fail the pipeline's own checks, which is beside the point).
  expect(api.of('download')).toHaveLength(11)
  expect(results).toHaveLength(11)
  expect(out.warn.join('\n')).not.toMatch(/unresponsive|no answer/)
})
