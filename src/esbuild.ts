/**
 * The esbuild plugin: `import megaoptim from 'unplugin-megaoptim/esbuild'`.
 */
import { megaoptim } from './index.ts'

export default megaoptim.esbuild as typeof megaoptim.esbuild
