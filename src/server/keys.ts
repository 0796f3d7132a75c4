import { createHash, randomBytes, randomInt, scrypt } from 'node:crypto'
import { promisify } from 'node:util'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** 32 alphanumeric characters from the CSPRNG, like the keys the hosted API hands out. */
export function generateApiKey(): string {
  let key = ''
  for (let i = 0; i < 32; i++) key += ALPHABET[randomInt(ALPHABET.length)]
  return key
}

/**
 * What the store keeps instead of the key: its SHA-256. Keys carry 190 bits of randomness, so a plain
 * hash is enough, and a copied data dir gives away no usable key.
 */
export function accountIdOf(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex')
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
