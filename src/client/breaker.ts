/**
 * The circuit breaker. Some answers mean every further request is wasted or harmful:
 * - 401/404 on the key (`AuthError`): the key is wrong; nothing more is sent at all.
 * - 455 (`TokensError`): the account is out of tokens; no new `/optimize` and no `/users/info` is sent.
 *   Jobs the API had already accepted before the 455 are still collected (`/result` and downloads): the
 *   account pays for them whether or not we fetch them, and their results are real.
 * It stays open for the life of the client; waiting requests are aborted at once (not one per rate slot).
 */
import { AuthError, CircuitOpenError, type MegaOptimError, TokensError } from './errors.ts'
import type { EndpointKind } from './http.ts'

export class CircuitBreaker {
  #reason: MegaOptimError | undefined
  readonly #controllers: Record<EndpointKind, AbortController> = {
    optimize: new AbortController(),
    result: new AbortController(),
    info: new AbortController(),
  }

  /** Open the breaker if `error` is one that must stop traffic; returns whether it did. */
  trip(error: unknown): boolean {
    if (this.#reason) return error instanceof AuthError || error instanceof TokensError
    if (error instanceof AuthError) {
      this.#reason = error
      for (const c of Object.values(this.#controllers)) c.abort(new CircuitOpenError(error))
      return true
    }
    if (error instanceof TokensError) {
      this.#reason = error
      this.#controllers.optimize.abort(new CircuitOpenError(error))
      this.#controllers.info.abort(new CircuitOpenError(error))
      return true
    }
    return false
  }

  /** The error that opened the breaker, if it is open. */
  get reason(): MegaOptimError | undefined {
    return this.#reason
  }

  /** Aborted once requests of `kind` must no longer be sent. */
  signal(kind: EndpointKind): AbortSignal {
    return this.#controllers[kind].signal
  }

  /** Throws the {@link CircuitOpenError} for `kind` if it is blocked. */
  check(kind: EndpointKind, file?: string): void {
    if (this.#controllers[kind].signal.aborted && this.#reason) throw new CircuitOpenError(this.#reason, file)
  }
}
