/**
 * The server under test, alone in its process so that its RSS is its own:
 * `<workers|default> <accounts>`; prints `{ "base": ..., "keys": [...] }` once listening, then answers
 * IPC `memory` with `{ rss, maxRss }` in bytes. Uses only the public server API, so it runs on any version.
 */
import { createMegaOptimServer } from '../src/server/server.ts'

const [workers, accounts] = process.argv.slice(2)
const server = createMegaOptimServer({
  ...(workers === 'default' ? {} : { workers: Number(workers) }),
  // Closed loops poll hard: the bench measures scheduling, not the rate limiter.
  rateLimit: 1_000_000,
})
const base = await server.listen({ host: '127.0.0.1', port: 0 })
const keys: string[] = []
for (let i = 0; i < Number(accounts); i++) {
  keys.push((await server.createAccount({ name: `k${i}`, email: `k${i}@bench.test`, tokens: -1 })).apiKey)
}
process.on('message', (message) => {
  if (message === 'memory') process.send!({ rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 })
  if (message === 'close') void server.close().then(() => process.exit(0))
})
console.log(JSON.stringify({ base, keys }))
