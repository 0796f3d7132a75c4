import type { ItemOutcome, JobInput, JobParams } from './types.ts'

/** `scheme://user:pass@` (or `scheme://user@`): the userinfo part of any URL written in a text. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]*@/gi

/**
 * The one scrubbing function: every URL in `text` loses its `user:pass@`. Whatever leaves the server or
 * is stored past the job's end (results, errors, logs, callbacks, answers) goes through it.
 */
export function scrubCredentials(text: string): string {
  return text.replace(USERINFO, '$1')
}

/** An item's outcome as it may be stored: its error text scrubbed. */
export function scrubOutcome(outcome: ItemOutcome): ItemOutcome {
  const { error } = outcome.item
  return error === undefined ? outcome : { ...outcome, item: { ...outcome.item, error: scrubCredentials(error) } }
}

/**
 * A finished job needs no credentials any more: `http_user`/`http_pass` and any `user:pass@` in its
 * URLs are dropped when it is settled, so they do not sit in the store for a day.
 */
export function withoutCredentials(params: JobParams, inputs: JobInput[]): { params: JobParams; inputs: JobInput[] } {
  return {
    params: {
      ...params,
      httpUser: null,
      httpPass: null,
      callbackUrl: params.callbackUrl === null ? null : scrubCredentials(params.callbackUrl),
    },
    inputs: inputs.map((input) => (input.kind === 'url' ? { ...input, url: scrubCredentials(input.url) } : input)),
  }
}
