import { describe, expect, it, vi } from 'vitest'
import { optimizeImage } from '../../src/engine/index.ts'
import * as residual from '../../src/engine/png-residual.ts'
import { fixture, params } from './_helpers.ts'

vi.mock('../../src/engine/png-residual.ts', async (original) => {
  const actual = await original<typeof residual>()
  return { ...actual, quantizeResiduals: vi.fn(actual.quantizeResiduals) }
})

describe('what the search spends', () => {
  it('skips the residual search when even its coarsest step is no smaller than the palette (flat art)', async () => {
    const quantize = vi.mocked(residual.quantizeResiduals)
    quantize.mockClear()
    const result = await optimizeImage(fixture('horse.png'), params())
    expect(result.settings).toMatch(/palette/)
    // One quantization (the coarsest step, to compare bytes), no bisection over the steps.
    expect(quantize).toHaveBeenCalledTimes(1)
  })

  it('still searches residuals where they win (a photo)', async () => {
    const quantize = vi.mocked(residual.quantizeResiduals)
    quantize.mockClear()
    const result = await optimizeImage(fixture('chelsea.png'), params())
    expect(result.settings).toMatch(/residual/)
    expect(quantize.mock.calls.length).toBeGreaterThan(2)
  })
})
