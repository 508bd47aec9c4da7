import { isIPv4 } from 'node:net';

/**
 * True for the hosts the insecure-loopback opt-in covers, as `URL.hostname` writes them: `localhost`,
 * any address of 127.0.0.0/8 and `[::1]`. A name that merely resolves to loopback
 * (`127.0.0.1.nip.io`) is not one: the check needs no DNS and cannot be fooled by it.
 *
 * @example
 * isLoopbackHost(new URL('http://127.0.0.2:8080/token').hostname); // true
 * isLoopbackHost('idp.example'); // false
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost' || host === '[::1]') return true;
  return isIPv4(host) && host.startsWith('127.');
}
