import type { FastifyInstance } from 'fastify'
import type { ServerContext } from '../context.ts'
import { ApiError } from '../envelope.ts'
import { readForm } from '../form.ts'
import { generateApiKey, hashPassword } from '../keys.ts'
import { DuplicateAccountError } from '../store/types.ts'
import type { RouteLimits } from './limits.ts'

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/** Laravel's validation messages, in its `{ field: [messages] }` form. */
function validate(f: Record<string, string>): Record<string, string[]> {
  const errors: Record<string, string[]> = {}
  const add = (field: string, message: string): void => {
    ;(errors[field] ??= []).push(message)
  }
  const present = (field: string): boolean => f[field] !== undefined && f[field].trim() !== ''
  for (const [field, label] of [
    ['first_name', 'first name'],
    ['last_name', 'last name'],
    ['email', 'email'],
    ['password', 'password'],
  ] as const) {
    if (!present(field)) add(field, `The ${label} field is required.`)
    else if (f[field]!.length > 255) add(field, `The ${label} may not be greater than 255 characters.`)
  }
  if (present('email') && !EMAIL.test(f.email!.trim())) add('email', 'The email must be a valid email address.')
  if (present('password') && f.password!.length < 8) add('password', 'The password must be at least 8 characters.')
  if (present('password') && f.password !== f.password_confirmation) add('password', 'The password confirmation does not match.')
  if (!['yes', 'on', '1', 'true'].includes((f.terms_and_conditions ?? '').toLowerCase())) {
    add('terms_and_conditions', 'The terms and conditions must be accepted.')
  }
  return errors
}

export function registerRegisterRoute(app: FastifyInstance, ctx: ServerContext, limits: RouteLimits): void {
  app.post('/v1/register', { config: limits.api }, async (req) => {
    const { fields } = await readForm(req)
    const errors = validate(fields)
    if (Object.keys(errors).length > 0) throw new ApiError(400, errors)
    const email = fields.email!.trim()
    const name = `${fields.first_name!.trim()} ${fields.last_name!.trim()}`
    const passwordHash = await hashPassword(fields.password!)
    const apiKey = generateApiKey()
    try {
      const account = await ctx.store.createAccount({
        apiKey,
        name,
        email,
        tokens: ctx.options.signupTokens,
        passwordHash,
      })
      return {
        status: 'ok',
        code: 200,
        result: { name: account.name, email: account.email, tokens: account.tokens, api_key: apiKey },
      }
    } catch (error) {
      if (error instanceof DuplicateAccountError) {
        throw new ApiError(409, 'This email is already registered: use the API key you were given.')
      }
      throw error
    }
  })
}
