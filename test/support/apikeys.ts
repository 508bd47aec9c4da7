// Shared set-up for this module's storage tests. It holds no tests itself; it is named *.test.ts
// only so that builds leave it out (it imports from test/).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LatchkeyError, manualClock, type Clock } from '../../src/core/index.js';
import { InvalidationBus, type DatabaseHandle, type DialectName } from '../../src/db/index.js';
import { createIdentity, type Actor, type Identity, type User } from '../../src/identity/index.js';
import { createStoreFixture, type StoreFixture } from './store.js';
import { createApiKeys, type ApiKeys, type ApiKeysOptions } from '../../src/apikeys/api-keys.js';
import { API_KEY_PEPPER_TYPE } from '../../src/apikeys/hashing.js';
import { createUsageGate } from '../../src/apikeys/usage.js';

type Usage = ReturnType<typeof createUsageGate>;

export const SYSTEM: Actor = { type: 'system' };

/** One process: its own database handle, bus, identity caches and API key module. */
export interface ApiKeysProcess {
  handle: DatabaseHandle;
  bus: InvalidationBus;
  identity: Identity;
  apiKeys: ApiKeys;
  /** The real usage gate, when the fixture was built with `usage: true`. */
  usage: Usage | undefined;
}

export interface ApiKeysFixture extends ApiKeysProcess {
  dialect: DialectName;
  store: StoreFixture;
  clock: Clock & { advance(ms: number): void };
  tenantId: string;
  /** An admin of the tenant (role admin). */
  admin: User;
  adminActor: Actor;
  /** Another process on the same database, with the same master key. */
  peer(options?: { boundMs?: number; startBus?: boolean; verifier?: ApiKeysOptions['verifier'] }): Promise<ApiKeysProcess>;
  dispose(): Promise<void>;
}

export const randomName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

async function startProcess(
  store: StoreFixture,
  clock: Clock,
  options: { boundMs: number; startBus: boolean; usage?: boolean; verifier?: ApiKeysOptions['verifier'] },
): Promise<ApiKeysProcess> {
  const bus = new InvalidationBus({ handle: store.handle, boundMs: options.boundMs });
  if (options.startBus) await bus.start();
  const identity = createIdentity({ db: store.handle.db, bus, clock });
  const usage = options.usage ? createUsageGate({ db: store.handle.db, clock }) : undefined;
  usage?.start();
  const apiKeys = createApiKeys({
    db: store.handle.db,
    store: store.store,
    authorizer: identity.authorizer,
    audit: identity.audit,
    bus,
    clock,
    usage,
    verifier: options.verifier,
  });
  return { handle: store.handle, bus, identity, apiKeys, usage };
}

export async function createApiKeysFixture(
  dialect: DialectName,
  options: { boundMs?: number; usage?: boolean; verifier?: ApiKeysOptions['verifier'] } = {},
): Promise<ApiKeysFixture> {
  const store = await createStoreFixture(dialect, [API_KEY_PEPPER_TYPE]);
  // The usage gate's table, until it joins the migrations.
  const clock = manualClock();
  const processes: ApiKeysProcess[] = [];
  const main = await startProcess(store, clock, { boundMs: options.boundMs ?? 5000, startBus: true, usage: options.usage, verifier: options.verifier });
  processes.push(main);
  const tenant = await main.identity.tenants.create({ name: randomName('tenant') });
  const admin = await main.identity.users.create(SYSTEM, tenant.id, { username: 'root', roles: ['admin'] });
  return {
    ...main,
    dialect,
    store,
    clock,
    tenantId: tenant.id,
    admin,
    adminActor: { type: 'user', tenantId: tenant.id, userId: admin.id },
    async peer(peerOptions = {}) {
      const process = await startProcess(store.peer({}), clock, {
        boundMs: peerOptions.boundMs ?? options.boundMs ?? 5000,
        startBus: peerOptions.startBus ?? true,
        usage: options.usage,
        verifier: peerOptions.verifier,
      });
      processes.push(process);
      return process;
    },
    async dispose() {
      for (const p of processes) {
        await p.apiKeys.verifier.close();
        await p.usage?.close();
        await p.bus.stop();
      }
      await store.dispose();
    },
  };
}

/** Awaits `promise`, expecting a LatchkeyError with `code`; returns it. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<LatchkeyError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof LatchkeyError, `expected a LatchkeyError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** Polls `check` until it holds, failing after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - started;
}
