import { scrubCredentials } from './store/scrub.ts'

/** Every line the server logs for its operator: prefixed, and never with URL credentials in it. */
export function serverLog(message: string): void {
  console.error(`[megaoptim server] ${scrubCredentials(message)}`)
}
