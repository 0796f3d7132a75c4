import { bundlerSuite } from './suite.ts'

bundlerSuite('esbuild')
