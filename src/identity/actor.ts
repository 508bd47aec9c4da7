import type { Permission } from './permissions.js';

/**
 * Who performs a change: a user (possibly through one of their API keys) or Latchkey itself.
 * `permissions` are what the actor holds for this change (the HTTP layer sets a key's own, its
 * owner's narrowed by its roles); without them the user's current permissions count. Nobody
 * grants more than they hold.
 */
export type Actor =
  | { type: 'user'; tenantId: string; userId: string; apiKeyId?: string; permissions?: ReadonlySet<Permission> }
  /** An application's end user on the hosted connect page, through a connect session: holds no permission. */
  | { type: 'end_user'; tenantId: string; endUserId: string; connectSessionId: string }
  | { type: 'system' };

/** The actor of changes Latchkey makes on its own (bootstrap, maintenance, the CLI). */
export const SYSTEM_ACTOR: Actor = Object.freeze({ type: 'system' });

/**
 * How an actor is written in the audit log.
 *
 * @example
 * actorLabel({ type: 'user', tenantId: 'ten_1', userId: 'usr_x' }); // 'user:usr_x'
 * actorLabel({ type: 'user', tenantId: 'ten_1', userId: 'usr_x', apiKeyId: 'key_x' }); // 'api_key:key_x'
 * actorLabel({ type: 'end_user', tenantId: 'ten_1', endUserId: 'u-42', connectSessionId: 'cs_x' }); // 'end_user:u-42'
 * actorLabel({ type: 'system' }); // 'system'
 */
export function actorLabel(actor: Actor): string {
  if (actor.type === 'system') return 'system';
  if (actor.type === 'end_user') return `end_user:${actor.endUserId}`;
  return actor.apiKeyId ? `api_key:${actor.apiKeyId}` : `user:${actor.userId}`;
}
