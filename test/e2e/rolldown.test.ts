import { bundlerSuite } from './suite.ts'

bundlerSuite('rolldown')
