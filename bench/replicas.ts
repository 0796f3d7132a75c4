/**
 * `npm run bench -- replicas`: `megaoptim serve --database` replicas (child processes) over one real
 * PostgreSQL on loopback (Debian's postgresql, started as in the tests; or MEGAOPTIM_TEST_DATABASE_URL).
 *
 * 1. Throughput: BENCH_IMAGES (default 40) real fixture images in jobs of 5, sent round-robin to 1 and
 *    to 2 replicas of one worker each (team cache off, so every image is encoded): images per minute.
 * 2. Long-poll wake-up: one-image jobs run by a worker replica while the client long-polls an API-only
 *    replica (`--workers 0`): the delay from the job's commit (its finished_at) to the answer, p50/p95,
 *    beside the same delay when the client polls the replica that ran the job.
 * 3. Team result cache: the same image asked again by the same account: a cache hit against an encode.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { FormData, request } from 'undici'
import { postgresMissing, startPostgres } from '../test/helpers/postgres.ts'
import { killAll, replica, run, type Replica } from '../test/helpers/replicas.ts'

if (postgresMissing) {
  console.log(`skipped: ${postgresMissing}`)
  process.exit(0)
}

const image = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../test/fixtures/images/${name}`, import.meta.url)))
const FIXTURES = ['horse.png', 'page.png', 'text.png', 'rocket.jpg', 'chelsea.png'].map((name) => ({ name, data: image(name) }))
const IMAGES = Number(process.env.BENCH_IMAGES ?? 40)
const WAKES = Number(process.env.BENCH_WAKES ?? 20)

const server = await startPostgres()
process.on('exit', killAll)

async function key(database: string): Promise<string> {
  const made = await run(['keys', 'create', '--database', database, '--name', 'Bench', '--email', 'bench@example.com', '--tokens', '-1'])
  if (made.code !== 0) throw new Error(made.stderr)
  return made.stdout.trim()
}

async function submit(base: string, apiKey: string, images: { name: string; data: Buffer }[]): Promise<string> {
  const form = new FormData()
  form.set('type', images.length === 1 ? 'file' : 'files')
  images.forEach((img, i) => form.set(images.length === 1 ? 'file' : `file${i + 1}`, new Blob([img.data]), img.name))
  const res = await request(`${base}/v1/optimize`, { method: 'POST', headers: { 'x-api-key': apiKey }, body: form })
  const json = (await res.body.json()) as { code: number; process_id?: string }
  if (json.code !== 202) throw new Error(`submit: ${JSON.stringify(json)}`)
  return json.process_id!
}

async function result(base: string, apiKey: string, id: string): Promise<{ code: number; result?: { success: number }[] }> {
  for (;;) {
    const res = await request(`${base}/v1/optimize/${id}/result?timeout=60`, { headers: { 'x-api-key': apiKey } })
    const json = (await res.body.json()) as { code: number; result?: { success: number }[] }
    if (json.code !== 202) return json
  }
}

const stop = async (replicas: Replica[]): Promise<void> => {
  await Promise.all(replicas.map((r) => new Promise((resolve) => (r.child.once('exit', resolve), r.child.kill('SIGTERM')))))
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

// 1. Throughput
console.log(`\n1. throughput: ${IMAGES} images (${FIXTURES.map((f) => f.name).join(', ')}) in jobs of 5, one worker per replica`)
console.log('replicas | images/min | wall time')
for (const count of [1, 2]) {
  const database = await server.createDatabase()
  const apiKey = await key(database)
  const replicas = await Promise.all(
    Array.from({ length: count }, () => replica(database, ['--workers', '1', '--dedupe-days', '0', '--rate-limit', '100000'])),
  )
  const jobs: { base: string; images: typeof FIXTURES }[] = []
  for (let i = 0; i < IMAGES; i += 5) {
    jobs.push({ base: replicas[jobs.length % count]!.base, images: Array.from({ length: Math.min(5, IMAGES - i) }, (_, k) => FIXTURES[(i + k) % FIXTURES.length]!) })
  }
  const started = performance.now()
  const ids = await Promise.all(jobs.map((j) => submit(j.base, apiKey, j.images)))
  const answers = await Promise.all(ids.map((id, n) => result(jobs[n]!.base, apiKey, id)))
  const seconds = (performance.now() - started) / 1000
  if (answers.some((a) => a.code !== 200)) throw new Error(`a job failed: ${JSON.stringify(answers.find((a) => a.code !== 200))}`)
  console.log(`${String(count).padEnd(8)} | ${((IMAGES / seconds) * 60).toFixed(1).padStart(10)} | ${seconds.toFixed(1)} s`)
  await stop(replicas)
}

// 2. Long-poll wake-up across replicas
{
  const database = await server.createDatabase()
  const apiKey = await key(database)
  const api = await replica(database, ['--workers', '0', '--rate-limit', '100000', '--dedupe-days', '0'])
  const runner = await replica(database, ['--workers', '1', '--rate-limit', '100000', '--dedupe-days', '0'])
  const db = new pg.Client({ connectionString: database })
  await db.connect()
  const tiny = { name: 'palette.png', data: image('palette_color.png') }
  const delays = { other: [] as number[], same: [] as number[] }
  for (let i = 0; i < WAKES; i++) {
    for (const [kind, poll] of [['other', api], ['same', runner]] as const) {
      const id = await submit(poll.base, apiKey, [tiny])
      await result(poll.base, apiKey, id)
      const answered = Date.now()
      const { rows } = await db.query<{ finished_at: string }>('SELECT finished_at FROM jobs WHERE id = $1', [id])
      delays[kind].push(answered - Number(rows[0]!.finished_at))
    }
  }
  await db.end()
  console.log(`\n2. long-poll wake-up: ${WAKES} one-image jobs each; delay from the job's commit to the /result answer`)
  console.log('client polls                        | p50     | p95     | max')
  for (const [label, values] of [
    ['another replica (LISTEN/NOTIFY)', delays.other],
    ['the replica that ran the job (peer)', delays.same],
  ] as const) {
    console.log(
      `${label.padEnd(35)} | ${`${percentile(values, 50)} ms`.padEnd(7)} | ${`${percentile(values, 95)} ms`.padEnd(7)} | ${Math.max(...values)} ms`,
    )
  }
  console.log('target: p95 <= 100 ms across replicas')
  await stop([api, runner])
}

// 3. Team result cache: a hit against an encode
{
  const database = await server.createDatabase()
  const apiKey = await key(database)
  const one = await replica(database, ['--workers', '1', '--rate-limit', '100000'])
  const two = await replica(database, ['--workers', '1', '--rate-limit', '100000'])
  console.log('\n3. team result cache: submit → result of one image, first on replica 1 (encode), then the same bytes on replica 2 (hit)')
  console.log('image        | encode   | cache hit')
  for (const fixture of FIXTURES) {
    let started = performance.now()
    await result(one.base, apiKey, await submit(one.base, apiKey, [fixture]))
    const encode = performance.now() - started
    started = performance.now()
    await result(two.base, apiKey, await submit(two.base, apiKey, [fixture]))
    const hit = performance.now() - started
    console.log(`${fixture.name.padEnd(12)} | ${`${encode.toFixed(0)} ms`.padEnd(8)} | ${hit.toFixed(0)} ms`)
  }
  await stop([one, two])
}

await server.stop()
console.log('\n(one machine runs PostgreSQL, the replicas and the client: a shared 2-core box, figures are indicative)')
