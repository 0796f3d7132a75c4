/**
 * The Vite plugin: `import megaoptim from 'unplugin-megaoptim/vite'`.
 */
import { megaoptim } from './index.ts'

export default megaoptim.vite as typeof megaoptim.vite
