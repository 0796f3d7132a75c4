import { bundlerSuite } from './suite.ts'

bundlerSuite('rollup')
