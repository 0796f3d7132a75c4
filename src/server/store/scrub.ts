import type { JobInput, JobParams } from './types.ts'

/**
 * A finished job needs no credentials any more: `http_user`/`http_pass` and any `user:pass@` in its
 * URLs are dropped when it is settled, so they do not sit in the store for a day.
 */
export function withoutCredentials(params: JobParams, inputs: JobInput[]): { params: JobParams; inputs: JobInput[] } {
  return {
    params: { ...params, httpUser: null, httpPass: null },
    inputs: inputs.map((input) => {
      if (input.kind !== 'url') return input
      const url = new URL(input.url)
      if (url.username === '' && url.password === '') return input
      url.username = ''
      url.password = ''
      return { ...input, url: url.href }
    }),
  }
}
