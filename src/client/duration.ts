/** A duration for people, in messages: `62 s`, `0.4 s`, `2.5 s`. */
export function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000
  return s < 10 ? `${s.toFixed(1).replace(/\.0$/, '')} s` : `${Math.round(s)} s`
}
