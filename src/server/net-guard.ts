import dns from 'node:dns'
import net from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent } from 'undici'

/**
 * SSRF guard for `url` fetching and `callback_url`: a client-supplied URL must not reach loopback,
 * private, link-local or otherwise non-public addresses unless the server runs with `allowPrivateUrls`.
 * Every address a name resolves to is checked, and the check runs again inside the connection's own
 * DNS lookup so a name cannot resolve to a public address for the check and a private one for the connect.
 */
export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError'
  readonly code = 'BLOCKED_ADDRESS'
}

const IPV4_COMPATIBLE = new net.BlockList()
IPV4_COMPATIBLE.addSubnet('::', 96, 'ipv6')

/** True for anything but a plain public unicast address; IPv4-mapped IPv6 is judged as the IPv4 it maps, IPv4-compatible IPv6 is refused. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  if (!ipaddr.isValid(bare)) return true
  // IPv4-compatible IPv6 (::/96, deprecated): `[::127.0.0.1]` is `::7f00:1`, which ipaddr.js calls unicast
  // yet some stacks route to the embedded IPv4 address. Node's parser, not ipaddr.js (which reads
  // `::8.8.8.8` as IPv4-mapped), says what the socket would connect to.
  if (net.isIPv6(bare) && IPV4_COMPATIBLE.check(bare, 'ipv6')) return true
  const ip = ipaddr.process(bare)
  return ip.range() !== 'unicast'
}

function describe(host: string, address: string): string {
  return host === address ? address : `${host} (${address})`
}

async function resolveAll(hostname: string): Promise<string[]> {
  const found = await dns.promises.lookup(hostname, { all: true, verbatim: true })
  return found.map((a) => a.address)
}

/** Throws `BlockedAddressError` when the URL's host is, or resolves to, a non-public address. */
export async function assertPublicUrl(url: URL): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const addresses = net.isIP(host) ? [host] : await resolveAll(host)
  for (const address of addresses) {
    if (isPrivateAddress(address)) {
      throw new BlockedAddressError(
        `${describe(host, address)} is a loopback, private or link-local address; this server does not fetch from such addresses`,
      )
    }
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void

/** A `lookup` for net.connect that refuses non-public answers. */
function guardedLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, [])
    const list = addresses as dns.LookupAddress[]
    const bad = list.find((a) => isPrivateAddress(a.address))
    if (bad) {
      return callback(
        new BlockedAddressError(`${describe(hostname, bad.address)} is a loopback, private or link-local address; refused`),
        [],
      )
    }
    if (options.all) return callback(null, list)
    const first = list[0]
    if (!first) return callback(Object.assign(new Error(`${hostname} did not resolve`), { code: 'ENOTFOUND' }), [])
    callback(null, first.address, first.family)
  })
}

export interface OutboundOptions {
  allowPrivateUrls: boolean
  timeoutMs: number
}

/** The undici dispatcher for every outbound request of the server. */
export function createOutboundAgent({ allowPrivateUrls, timeoutMs }: OutboundOptions): Agent {
  return new Agent({
    connectTimeout: Math.min(timeoutMs, 10_000),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connections: 16,
    connect: allowPrivateUrls ? {} : { lookup: guardedLookup as unknown as typeof dns.lookup },
  })
}
