import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LatchkeyError, base62, stringError } from '../core/index.js';
import { SYSTEM_ACTOR } from './actor.js';
import type { IdentityDeps } from './deps.js';
import { MAX_PASSWORD_LENGTH, UNMATCHABLE_PASSWORD_HASH, verifyPassword } from './passwords.js';
import { SlidingWindow } from './sliding-window.js';
import { parseInput } from './validation.js';

export interface LoginInput {
  /** The tenant's name. */
  tenant: string;
  username: string;
  password: string;
  /** The client's address, for rate limiting and the audit log. */
  address: string;
}

export interface LoginResult {
  /** The session token, for the cookie only: it is stored as a SHA-256 hash. */
  token: string;
  expiresAt: string;
  tenantId: string;
  userId: string;
}

export interface SessionInfo {
  tenantId: string;
  userId: string;
  /** SHA-256 (hex) of the token. */
  sessionId: string;
  expiresAt: string;
}

/** Console logins: password check, session tokens, failed-login limits. */
export interface SessionService {
  /** unauthorized (one message for every failure) or rate_limited with `details.retryAfterSeconds`. */
  login(input: LoginInput): Promise<LoginResult>;
  /** The session a token opens, or undefined when unknown, expired or its user is disabled. */
  authenticate(token: string): Promise<SessionInfo | undefined>;
  logout(token: string): Promise<void>;
  /** Deletes expired sessions; returns how many. */
  purgeExpired(): Promise<number>;
}

export interface SessionOptions {
  /** Session lifetime (default 12 h). */
  lifetimeMs?: number;
  /** Failed logins allowed per account from one client address within the window (default 5). */
  maxFailuresPerAccountAddress?: number;
  /** Failed logins allowed per client address, whatever the accounts, within the window (default 20). */
  maxFailuresPerAddress?: number;
  /** Failed logins allowed per account from all addresses together within the window (default 100). */
  maxFailuresPerAccount?: number;
  /** The failed-login window (default 15 min). */
  failureWindowMs?: number;
}

const TOKEN_PATTERN = /^[0-9A-Za-z]{32,64}$/;
const INCORRECT = 'The username or password is incorrect.';

const loginInput = z.object({
  tenant: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(63, { error: 'is too long' }),
  username: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(128, { error: 'is too long' }),
  password: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(MAX_PASSWORD_LENGTH, { error: 'is too long' }),
  address: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(200, { error: 'is too long' }),
});

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * @example
 * const { token, expiresAt } = await identity.sessions.login({ tenant: 'default', username: 'admin', password, address: req.ip });
 * const session = await identity.sessions.authenticate(token); // { tenantId, userId, sessionId, expiresAt }
 */
export function createSessionService(deps: IdentityDeps, options: SessionOptions = {}): SessionService {
  const { db, clock } = deps;
  const lifetimeMs = options.lifetimeMs ?? 12 * 3600_000;
  const windowMs = options.failureWindowMs ?? 15 * 60_000;
  // Failures count per (account, address): a stranger's wrong passwords do not lock the owner out.
  // The per-address limit stops one address trying many accounts, the far higher per-account
  // ceiling a guess spread over many addresses.
  const pairs = new SlidingWindow({ limit: options.maxFailuresPerAccountAddress ?? 5, windowMs });
  const addresses = new SlidingWindow({ limit: options.maxFailuresPerAddress ?? 20, windowMs });
  const accounts = new SlidingWindow({ limit: options.maxFailuresPerAccount ?? 100, windowMs });

  return {
    async login(input) {
      const { tenant, username, password, address } = parseInput(loginInput, input, 'login');
      const started = clock.now().getTime();
      const account = `${tenant}\u0000${username.toLowerCase()}`;
      const pair = `${account}\u0000${address}`;
      const waitMs = Math.max(
        pairs.retryAfterMs(pair, started),
        addresses.retryAfterMs(address, started),
        accounts.retryAfterMs(account, started),
      );
      if (waitMs > 0) {
        deps.logger?.warn({ tenant, address }, 'Login refused: too many failed attempts.');
        throw new LatchkeyError('rate_limited', 'Too many failed logins; try again later.', {
          details: { retryAfterSeconds: Math.ceil(waitMs / 1000) },
        });
      }

      // One query whichever part is missing, and always one scrypt: no timing tells them apart.
      const row = await db
        .selectFrom('tenants')
        .leftJoin('users', (join) => join.onRef('users.tenant_id', '=', 'tenants.id').on('users.username', '=', username))
        .select(['tenants.id as tenantId', 'users.id as userId', 'users.password_hash as passwordHash', 'users.disabled as disabled'])
        .where('tenants.name', '=', tenant)
        .executeTakeFirst();
      const matches = await verifyPassword(password, row?.passwordHash ?? UNMATCHABLE_PASSWORD_HASH);
      const disabled = Number(row?.disabled ?? 0) !== 0;

      if (!row?.userId || !matches || disabled) {
        const now = clock.now().getTime();
        pairs.hit(pair, now);
        addresses.hit(address, now);
        accounts.hit(account, now);
        if (row) {
          const reason = !row.userId ? 'unknown_user' : !row.passwordHash ? 'no_password' : !matches ? 'wrong_password' : 'disabled';
          await deps.audit.record(db, {
            tenantId: row.tenantId,
            actor: SYSTEM_ACTOR,
            action: 'login.failed',
            ...(row.userId ? { target: row.userId } : {}),
            details: { username, address, reason },
          });
        }
        throw new LatchkeyError('unauthorized', INCORRECT);
      }

      // The account's ceiling is not reset: a distributed guess goes on counting.
      pairs.reset(pair);
      const token = base62.encode(randomBytes(32));
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + lifetimeMs).toISOString();
      const { tenantId, userId } = { tenantId: row.tenantId, userId: row.userId };
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('sessions')
          .values({ id: hashToken(token), tenant_id: tenantId, user_id: userId, created_at: now.toISOString(), expires_at: expiresAt })
          .execute();
        await deps.audit.record(trx, {
          tenantId,
          actor: { type: 'user', tenantId, userId },
          action: 'login.succeeded',
          target: userId,
          details: { username, address },
        });
      });
      return { token, expiresAt, tenantId, userId };
    },

    async authenticate(token) {
      if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return undefined;
      const sessionId = hashToken(token);
      const row = await db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['sessions.tenant_id as tenantId', 'sessions.user_id as userId', 'sessions.expires_at as expiresAt', 'users.disabled as disabled'])
        .where('sessions.id', '=', sessionId)
        .executeTakeFirst();
      if (!row || Number(row.disabled) !== 0) return undefined;
      if (row.expiresAt <= clock.now().toISOString()) return undefined;
      return { tenantId: row.tenantId, userId: row.userId, sessionId, expiresAt: row.expiresAt };
    },

    async logout(token) {
      if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return;
      await db.deleteFrom('sessions').where('id', '=', hashToken(token)).execute();
    },

    async purgeExpired() {
      const result = await db.deleteFrom('sessions').where('expires_at', '<=', clock.now().toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
