import { randomBytes, randomInt, scrypt } from 'node:crypto'
import { promisify } from 'node:util'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** 32 alphanumeric characters from the CSPRNG, like the keys the hosted API hands out. */
export function generateApiKey(): string {
  let key = ''
  for (let i = 0; i < 32; i++) key += ALPHABET[randomInt(ALPHABET.length)]
  return key
}

/** A random, URL-safe, unguessable path segment for capability download URLs. */
export function generateCapability(): string {
  return randomBytes(16).toString('hex')
}

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>

/** Registration stores a salted scrypt hash; the server never needs the password back. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, 32)
  return `scrypt$${salt.toString('hex')}$${hash.toString('hex')}`
}
