// In-process verification for `npm run bench:apikeys`: Latchkey's verifier on a cached key next to
// its floor (one HMAC-SHA-256 of the secret + one Map lookup), and the better-auth peer, measured
// in interleaved rounds so that drift (clock boost, GC, other work) falls on every contender alike.
import { createHmac, randomBytes } from 'node:crypto';
import { hashesEqual, keyedHash, parseApiKey } from '../src/apikeys/index.js';
import type { Peer } from './apikeys-peer.js';
import type { BenchLatchkey } from './apikeys-latchkey.js';
import { runFor, runForAsync, runner, stats, type OpStats } from './support.js';

export interface VerifySettings {
  rounds: number;
  roundMs: number;
  warmupMs: number;
}

export interface VerifyResult {
  floor: OpStats;
  consumeFalse: OpStats;
  consumeTrue: OpStats;
  /** better-auth, one entry per database it ran on. */
  peers: OpStats[];
  /** Parts of Latchkey's path, one call each, to show where the time goes. */
  components: OpStats[];
}

function assertValid(result: { valid: boolean; code: string }, what: string): void {
  if (!result.valid) throw new Error(`${what}: the key did not verify (${result.code})`);
}

/**
 * Measures, round by round: the floor, `verify(key, {consume:false})`, `verify(key2,
 * {consume:true})` on a key without limits (rate limit and credits decided, last use noted), and
 * each peer. Every Latchkey call checks that the answer is `valid`; every peer call that better-auth
 * answered `valid: true`.
 */
export async function benchVerify(bench: BenchLatchkey, peers: readonly Peer[], settings: VerifySettings): Promise<VerifyResult> {
  const verifier = bench.latchkey.apiKeys.verifier;
  const a = await bench.mint('bench cached, consume false');
  const b = await bench.mint('bench cached, consume true');
  // Fill the cache (key row, tenant pepper, owner's permissions) before anything is timed.
  assertValid(await verifier.verify(a.key, { consume: false }), 'consume:false');
  assertValid(await verifier.verify(b.key, { consume: true }), 'consume:true');

  // The floor: what any keyed-hash verifier must do per request. The Map holds as many entries as
  // a busy cache might; the lookup is by the key id, as the verifier's is.
  const floorKey = randomBytes(32);
  const parsed = parseApiKey(a.key);
  if (parsed === undefined) throw new Error('minted key does not parse');
  const table = new Map<string, Buffer>();
  for (let i = 0; i < 10_000; i++) table.set(`k${randomBytes(12).toString('base64url')}`, randomBytes(32));
  table.set(parsed.id, createHmac('sha256', floorKey).update(parsed.secret).digest());
  const floorOp = () => {
    const stored = table.get(parsed.id);
    const digest = createHmac('sha256', floorKey).update(parsed.secret).digest();
    if (stored === undefined || digest.length !== stored.length) throw new Error('floor: lookup failed');
  };

  const consumeFalseOp = async () => {
    const result = await verifier.verify(a.key, { consume: false });
    if (!result.valid) throw new Error(`consume:false: ${result.code}`);
  };
  const consumeTrueOp = async () => {
    const result = await verifier.verify(b.key, { consume: true });
    if (!result.valid) throw new Error(`consume:true: ${result.code}`);
  };

  const floor = runner('floor: Map lookup + HMAC-SHA-256 of the secret');
  const consumeFalse = runner('Latchkey verify(key, {consume:false}), cached');
  const consumeTrue = runner('Latchkey verify(key, {consume:true}), cached, no limits');
  const peerRunners = peers.map((p) => ({ peer: p, r: runner(`better-auth verifyApiKey (${p.label})`) }));

  // Components, each one call: the shape and checksum check, the keyed hash with its compare.
  const pepper = bench.latchkey.apiKeys.hasher.peek(bench.tenantId);
  if (pepper === undefined) throw new Error('the tenant pepper is not cached');
  const storedDigest = keyedHash(pepper, parsed.secret);
  const components = [
    { r: runner('parseApiKey (shape regex + CRC32 checksum)'), op: () => void parseApiKey(a.key) },
    { r: runner('keyedHash + hashesEqual (HMAC under the pepper, constant-time compare)'), op: () => void hashesEqual(keyedHash(pepper, parsed.secret), storedDigest) },
  ];

  // The owner's permissions, as verify asks the authorizer for them on every call (a cache hit).
  const authorizer = bench.latchkey.identity.authorizer;
  const permissionsComponent = {
    r: runner("authorizer.userPermissions, cached (verify awaits it on every call)"),
    op: async () => {
      if (!(await authorizer.userPermissions(bench.tenantId, bench.adminId)).active) throw new Error('the admin is not active');
    },
  };

  const sync = [{ r: floor, op: floorOp }, ...components];
  const async = [
    { r: consumeFalse, op: consumeFalseOp },
    { r: consumeTrue, op: consumeTrueOp },
    permissionsComponent,
  ];
  for (const { op } of sync) runFor(undefined, op, settings.warmupMs);
  for (const { op } of async) await runForAsync(undefined, op, settings.warmupMs);
  for (const { peer } of peerRunners) await runForAsync(undefined, () => peer.verify(), settings.warmupMs / 2);

  for (let round = 0; round < settings.rounds; round++) {
    const forward = round % 2 === 0;
    const syncOrder = forward ? sync : [...sync].reverse();
    const asyncOrder = forward ? async : [...async].reverse();
    for (const { r, op } of syncOrder) runFor(r, op, settings.roundMs);
    for (const { r, op } of asyncOrder) await runForAsync(r, op, settings.roundMs);
    for (const { peer, r } of peerRunners) await runForAsync(r, () => peer.verify(), settings.roundMs);
  }
  return {
    floor: stats(floor),
    consumeFalse: stats(consumeFalse),
    consumeTrue: stats(consumeTrue),
    peers: peerRunners.map(({ r }) => stats(r)),
    components: [...components.map(({ r }) => stats(r)), stats(permissionsComponent.r)],
  };
}
