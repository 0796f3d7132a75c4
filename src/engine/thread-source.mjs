// Running from source (tests, `tsx`): an engine thread is a fresh context with no TypeScript loader, so it
// registers tsx before loading the thread body. The built package uses dist/engine-thread.js instead.
import { register } from 'tsx/esm/api'

register()
const { default: optimizeInThread } = await import('./thread.ts')
export default optimizeInThread
