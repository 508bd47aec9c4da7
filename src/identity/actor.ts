/** Who performs a change: a user (possibly through one of their API keys) or Latchkey itself. */
export type Actor = { type: 'user'; tenantId: string; userId: string; apiKeyId?: string } | { type: 'system' };

/** The actor of changes Latchkey makes on its own (bootstrap, maintenance, the CLI). */
export const SYSTEM_ACTOR: Actor = Object.freeze({ type: 'system' });

/**
 * How an actor is written in the audit log.
 *
 * @example
 * actorLabel({ type: 'user', tenantId: 'ten_1', userId: 'usr_x' }); // 'user:usr_x'
 * actorLabel({ type: 'user', tenantId: 'ten_1', userId: 'usr_x', apiKeyId: 'key_x' }); // 'api_key:key_x'
 * actorLabel({ type: 'system' }); // 'system'
 */
export function actorLabel(actor: Actor): string {
  if (actor.type === 'system') return 'system';
  return actor.apiKeyId ? `api_key:${actor.apiKeyId}` : `user:${actor.userId}`;
}
