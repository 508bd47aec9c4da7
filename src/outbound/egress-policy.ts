import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Which addresses a request may reach: public unicast addresses always; anything else (loopback,
 * private, link-local, CGNAT, cloud metadata, unique-local, multicast...) only when the allowlist
 * names the address's range or the request's host name.
 */
export interface EgressPolicy {
  /** The allowlist as given (normalised), for logs and `--help`. */
  readonly allow: readonly string[];
  /**
   * Why a request to `host` may not connect to `address`, as words that complete "it is ..."
   * (`a private address`), or undefined when it may.
   */
  refusal(host: string, address: string): string | undefined;
}

/** The cloud metadata services, named apart so a refusal says what it protects. */
const METADATA = [ipaddr.parse('169.254.169.254'), ipaddr.parse('fd00:ec2::254')];
const NAT64 = ipaddr.parseCIDR('64:ff9b::/96');

const RANGE_WORDS: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  linkLocal: 'a link-local address',
  carrierGradeNat: 'a carrier-grade NAT address',
  uniqueLocal: 'a unique-local address',
  unspecified: 'an unspecified address',
  multicast: 'a multicast address',
  broadcast: 'a broadcast address',
  reserved: 'a reserved address',
};

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach it: IPv4-mapped
 * (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
 * (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
 */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = address.parts;
  const fromParts = (high: number, low: number) => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  const range = address.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145') return fromParts(p[6]!, p[7]!);
  if (address.match(NAT64)) return fromParts(p[6]!, p[7]!);
  if (range === '6to4') return fromParts(p[1]!, p[2]!);
  // IPv4-compatible (deprecated, RFC 4291): the first 96 bits zero, except :: and ::1 themselves.
  if (p.slice(0, 6).every((x) => x === 0) && (p[6] !== 0 || p[7]! > 1)) return fromParts(p[6]!, p[7]!);
  return undefined;
}

function describe(address: Address): string | undefined {
  if (METADATA.some((m) => m.kind() === address.kind() && m.toNormalizedString() === address.toNormalizedString())) return 'a cloud metadata address';
  const range = address.range();
  if (range === 'unicast') return undefined;
  return RANGE_WORDS[range] ?? 'not a public address';
}

/** The address, preceded by the IPv4 address an IPv6 form carries. */
function forms(address: Address): Address[] {
  if (address.kind() === 'ipv4') return [address];
  const inner = embeddedIPv4(address as ipaddr.IPv6);
  return inner ? [inner, address] : [address];
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Builds the policy from allowlist entries: CIDRs (`10.0.0.0/8`, `::1/128`), single addresses
 * (`127.0.0.1`) and host names (`localhost`, matched exactly, case-insensitive). Throws a
 * TypeError naming a bad entry.
 *
 * @example
 * const policy = createEgressPolicy(['127.0.0.1/32']);
 * policy.refusal('idp.local', '127.0.0.1'); // undefined
 * policy.refusal('idp.local', '10.0.0.1'); // 'a private address'
 */
export function createEgressPolicy(allow: readonly string[] = []): EgressPolicy {
  const ranges: [Address, number][] = [];
  const names = new Set<string>();
  const normalised: string[] = [];
  for (const raw of allow) {
    const entry = raw.trim().toLowerCase();
    if (entry.includes('/') ? ipaddr.isValidCIDR(entry) : ipaddr.isValid(entry)) {
      const range = entry.includes('/') ? ipaddr.parseCIDR(entry) : ([ipaddr.parse(entry), ipaddr.parse(entry).kind() === 'ipv4' ? 32 : 128] as [Address, number]);
      ranges.push(range);
      normalised.push(`${range[0].toString()}/${range[1]}`);
    } else if (HOST_NAME.test(entry.replace(/\.$/, ''))) {
      names.add(entry.replace(/\.$/, ''));
      normalised.push(entry.replace(/\.$/, ''));
    } else {
      throw new TypeError(`The egress allowlist entry "${raw}" is neither a CIDR, an IP address nor a host name.`);
    }
  }

  const allowed = (address: Address) => ranges.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits));

  return {
    allow: normalised,
    refusal(host, text) {
      if (names.has(host.toLowerCase().replace(/\.$/, ''))) return undefined;
      if (!ipaddr.isValid(text)) return 'not an IP address';
      const address = ipaddr.parse(text);
      const all = forms(address);
      if (all.some(allowed)) return undefined;
      // An IPv6 form that carries an IPv4 address is what that address is.
      return describe(all[0]!);
    },
  };
}
