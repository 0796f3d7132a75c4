import { afterEach } from 'vitest'
import { MegaOptimClient, type ClientEvent, type ClientOptions } from '../../src/client.ts'
import { startFakeApi, type FakeApi, type FakeApiOptions } from '../helpers/fake-api.ts'

/**
 * A fake API and a client on it for each test, both closed after the test. The client retries fast and is
 * not paced, so fault tests stay quick; `defaults` and each call's options override that.
 */
export function useFakeApi(defaults: ClientOptions = {}) {
  let api: FakeApi | undefined
  let client: MegaOptimClient | undefined
  afterEach(async () => {
    await client?.close()
    await api?.close()
    client = api = undefined
  })
  return async function setup(apiOptions: FakeApiOptions = {}, clientOptions: ClientOptions = {}) {
    api = await startFakeApi(apiOptions)
    const events: ClientEvent[] = []
    client = new MegaOptimClient({
      apiKey: api.apiKey,
      endpoint: api.endpoint,
      rateLimit: { requests: 1000, perMs: 1000 },
      retryBaseDelay: 5,
      onEvent: (e) => events.push(e),
      ...defaults,
      ...clientOptions,
    })
    return { api, client, events }
  }
}
