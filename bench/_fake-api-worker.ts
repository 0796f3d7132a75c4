/**
 * Runs the loopback fake API in a worker thread for the client bench, so the server's work (multipart
 * parsing, long-polls) does not share an event loop with the client being measured, as with a real server.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { startFakeApi, type FakeApiOptions } from '../test/helpers/fake-api.ts'

const api = await startFakeApi(workerData as FakeApiOptions)
parentPort!.on('message', async (msg: { type: 'stats'; perMs: number } | { type: 'close' }) => {
  if (msg.type === 'stats') {
    parentPort!.postMessage({
      rateLimited: api.rateLimited,
      maxInWindow: Math.max(api.maxInWindow('optimize', msg.perMs), api.maxInWindow('result', msg.perMs)),
    })
  } else {
    await api.close()
    parentPort!.postMessage({ closed: true })
  }
})
parentPort!.postMessage({ endpoint: api.endpoint, apiKey: api.apiKey })
