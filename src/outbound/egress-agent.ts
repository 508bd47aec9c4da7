import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { LatchkeyError } from '../core/index.js';
import type { EgressPolicy } from './egress-policy.js';

/** One address a host name resolved to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** DNS resolution for the egress check: every address of `hostname` (default `dns.lookup` with `all`). */
export type Resolve = (hostname: string) => Promise<ResolvedAddress[]>;

/**
 * Opens the connection once the addresses are checked (default undici's connector, whose `net`
 * lookup answers exactly the checked addresses). Tests inject one that must never be reached.
 */
export type OpenConnection = (options: buildConnector.Options, addresses: readonly ResolvedAddress[], callback: buildConnector.Callback) => void;

export interface EgressAgentOptions {
  policy: EgressPolicy;
  resolve?: Resolve;
  open?: OpenConnection;
  /** Bound on opening one connection, TLS included (default 10 s). */
  connectTimeoutMs?: number;
}

/** Host names whose last checked addresses are kept for the connect step. */
const MAX_CHECKED_HOSTS = 10_000;

const systemResolve: Resolve = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

/** The refusal every caller sees: names the host, never a path, query or credential. */
export function egressRefused(host: string, reason: string): LatchkeyError {
  return new LatchkeyError('egress_refused', `The egress policy refuses requests to ${host}: it is ${reason} (allow it with --egress-allow).`);
}

/**
 * The undici Agent behind every outbound request. The egress check runs in its connect step,
 * after DNS: the host name is resolved once, every address is checked, and the socket is opened to
 * those addresses only (its lookup answers the checked list and never asks DNS again), so there is
 * no window between check and connect for DNS rebinding. A pooled connection was checked when it
 * was opened.
 *
 * @example
 * const agent = createEgressAgent({ policy: createEgressPolicy(['127.0.0.1/32']) });
 * await fetch('http://127.0.0.1:8080/', { dispatcher: agent });
 */
export function createEgressAgent(options: EgressAgentOptions): Agent {
  const { policy } = options;
  const resolve = options.resolve ?? systemResolve;
  // net.connect asks this lookup for the addresses of the host: it answers the list checked for
  // that host just before (every list kept here passed the policy, so a concurrent connect to the
  // same host can only get another checked list). A map rather than AsyncLocalStorage, whose
  // promise hooks would tax every promise of the process; one connector, so TLS sessions resume.
  const checked = new Map<string, readonly ResolvedAddress[]>();
  const pinnedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    const addresses = (checked.get(hostname) ?? []).filter((a) => !lookupOptions.family || a.family === lookupOptions.family);
    const first = addresses[0];
    if (first === undefined) {
      const err = Object.assign(new Error(`No checked address for ${hostname}.`), { code: 'ENOTFOUND' });
      return callback(err, '', 4);
    }
    if (lookupOptions.all) (callback as unknown as (err: null, all: ResolvedAddress[]) => void)(null, [...addresses]);
    else callback(null, first.address, first.family);
  };
  const connector = buildConnector({ lookup: pinnedLookup, timeout: options.connectTimeoutMs ?? 10_000 });
  const open: OpenConnection =
    options.open ??
    ((connectOptions, addresses, callback) => {
      if (!checked.has(connectOptions.hostname) && checked.size >= MAX_CHECKED_HOSTS) {
        const oldest = checked.keys().next();
        if (!oldest.done) checked.delete(oldest.value);
      }
      checked.set(connectOptions.hostname, addresses);
      connector(connectOptions, callback);
    });

  const connect: buildConnector.connector = (connectOptions, callback) => {
    const host = connectOptions.hostname.replace(/^\[(.*)\]$/, '$1');
    const family = isIP(host);
    const shown = family === 6 ? `[${host}]` : host;
    const addresses: Promise<ResolvedAddress[]> = family !== 0 ? Promise.resolve([{ address: host, family: family as 4 | 6 }]) : resolve(host);
    addresses.then(
      (list) => {
        if (list.length === 0) return callback(Object.assign(new Error(`${shown} did not resolve.`), { code: 'ENOTFOUND' }), null);
        for (const { address } of list) {
          const reason = policy.refusal(host, address);
          if (reason !== undefined) return callback(egressRefused(shown, family === 0 ? `${reason} (${address})` : reason), null);
        }
        open(connectOptions, list, callback);
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), null),
    );
  };
  return new Agent({ connect });
}
