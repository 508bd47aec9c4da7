import type { FastifyRequest } from 'fastify';
import type { ConnectorView } from '../connectors/index.js';
import { LatchkeyError } from '../core/index.js';
import { isEndUserId, type ConnectionOwner } from '../oauth/index.js';
import { forbidden, isAdmin, type Principal } from './auth.js';
import { END_USER_HEADER } from './connector-schemas.js';

/** The `Latchkey-End-User` header: the application's end user a request acts for. */
export function endUserOf(request: FastifyRequest): string | undefined {
  const value = request.headers[END_USER_HEADER];
  if (value === undefined) return undefined;
  if (Array.isArray(value) || !isEndUserId(value)) {
    throw new LatchkeyError('invalid_request', 'The Latchkey-End-User header must be one end user id of 1 to 255 characters without control characters.');
  }
  return value;
}

/**
 * Whose connection a request is about: null for a shared connector; for a per-user one, the end
 * user of the `Latchkey-End-User` header, `?user=`, or the caller. Acting for another user needs
 * identity:admin; acting for the application's end users needs only the route's permission.
 */
export function ownerOf(principal: Principal, connector: ConnectorView, user: string | undefined, endUser?: string): ConnectionOwner {
  if (connector.tokenMode === 'shared') {
    if (user !== undefined || endUser !== undefined) {
      throw new LatchkeyError('invalid_request', `The connector ${connector.id} is shared: it has one connection, not one per user; leave out "user" and Latchkey-End-User.`);
    }
    return null;
  }
  if (endUser !== undefined) {
    if (user !== undefined) throw new LatchkeyError('invalid_request', 'Name either a user (?user=) or an end user (Latchkey-End-User), not both.');
    return { endUserId: endUser };
  }
  const userId = user ?? principal.userId;
  if (userId !== principal.userId && !isAdmin(principal)) throw forbidden('identity:admin', ' to act for another user');
  return userId;
}

