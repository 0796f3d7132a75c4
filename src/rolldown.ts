/**
 * The Rolldown plugin: `import megaoptim from 'unplugin-megaoptim/rolldown'`.
 */
import { megaoptim } from './index.ts'

export default megaoptim.rolldown as typeof megaoptim.rolldown
