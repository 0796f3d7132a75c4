/**
 * `npm run bench -- <name>` runs `bench/<name>.ts`; each prints its figures side by side with its peers:
 * client, engine, rebuild, server-load (the compatible server under 20 closed-loop keys, and its peak
 * RSS on the largest images), replicas (images/min with 1 and 2 replicas over PostgreSQL, long-poll
 * wake-up across replicas, a team-cache hit against an encode). Files starting with `_` are their helpers, not benches.
 */
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'index.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))

const names = process.argv.slice(2)
if (names.length === 0 || names.some((n) => !available.includes(n))) {
  console.error(`Usage: npm run bench -- <${available.join('|')}> [...]`)
  process.exit(2)
}
for (const name of names) {
  console.log(`\n== bench: ${name} ==`)
  await import(`./${name}.ts`)
}
