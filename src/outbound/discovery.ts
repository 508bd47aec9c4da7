import type * as oauth from 'oauth4webapi';

/** Issuer metadata by issuer URL, shared by everything in the process that discovers an issuer. */
export interface DiscoveryCache {
  /**
   * The issuer's authorization server metadata. Fresh for the cache time; concurrent lookups of one
   * issuer share one request; a failure is not cached, and while a refetch fails the metadata last
   * read is used, so an outage of the metadata document alone does not stop tokens or sign-ins.
   */
  metadata(issuer: string): Promise<oauth.AuthorizationServer>;
}

interface Entry {
  at: number;
  value: Promise<oauth.AuthorizationServer>;
}

/** `fetchMetadata` does one discovery request and checks its answer; this adds caching around it. */
export function createDiscoveryCache(fetchMetadata: (issuer: string) => Promise<oauth.AuthorizationServer>, cacheMs: number, now: () => number): DiscoveryCache {
  const fresh = new Map<string, Entry>();
  const lastGood = new Map<string, oauth.AuthorizationServer>();

  return {
    async metadata(issuer) {
      const cached = fresh.get(issuer);
      if (cached && now() - cached.at < cacheMs) return cached.value;
      const value = fetchMetadata(issuer).then((as) => {
        lastGood.set(issuer, as);
        return as;
      });
      fresh.set(issuer, { at: now(), value });
      try {
        return await value;
      } catch (err) {
        if (fresh.get(issuer)?.value === value) fresh.delete(issuer);
        const known = lastGood.get(issuer);
        if (known) return known;
        throw err;
      }
    },
  };
}
