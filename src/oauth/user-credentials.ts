import {
  credentialWith,
  isStaticCredentialAuthType,
  parseUserCredential,
  resolveForEndUser,
  type ConnectorCredential,
  type ConnectorService,
  type ResolvedConnector,
  type UserCredential,
} from '../connectors/index.js';
import { LatchkeyError, type Logger } from '../core/index.js';
import type { Actor, AuditLog } from '../identity/index.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import { recordConnectionEvent, type ConnectionEventSink } from './connection-events.js';
import {
  CONNECTION_TYPE,
  assertConnectionKey,
  connectionId,
  credentialAttributes,
  isEndUser,
  readConnection,
  upsertConnection,
  type ConnectionOwner,
  type ConnectionView,
} from './connections.js';
import { connectionError } from './tokens-errors.js';

export interface UserCredentialsOptions {
  /** Its registry must know {@link CONNECTION_TYPE}; built with its `handle` (a save and its audit record commit together). */
  store: EncryptedObjectStore;
  connectors: ConnectorService;
  /** Records `connection.credential_saved` and `connector.credential_issued` (never a value). */
  audit?: AuditLog;
  onConnectionEvent?: ConnectionEventSink;
  logger?: Logger;
}

export interface UserCredentials {
  /**
   * Stores the credential a user or an application's end user gives for a per-user `api_key`,
   * `basic` or `bearer` connector, as their connection (replacing an earlier one). `input` is
   * `{credential: {key} | {username, password} | {token}, config?: {...}}`, `config` holding the
   * connector's end-user fields. Bad input is one `validation_failed` naming every bad field
   * (never a value) and stores nothing. Audited as `connection.credential_saved`.
   */
  save(actor: Actor, tenantId: string, connectorId: string, owner: ConnectionOwner, input: unknown): Promise<ConnectionView>;
  /**
   * The credential of `owner`'s connection to the resolved per-user connector, and the connector
   * resolved for the connection's config (its API base URL). `not_connected` when there is none.
   */
  credentialFor(resolved: ResolvedConnector, owner: ConnectionOwner): Promise<{ credential: ConnectorCredential; resolved: ResolvedConnector }>;
  /** {@link credentialFor} handed out to `actor`: audited as `connector.credential_issued` before it is returned. */
  issue(actor: Actor, tenantId: string, connectorId: string, owner: ConnectionOwner): Promise<ConnectorCredential>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whose connection, as the audit log shows it. */
function ownerDetails(owner: ConnectionOwner): Record<string, string> {
  if (owner === null) return {};
  return isEndUser(owner) ? { endUserId: owner.endUserId } : { userId: owner };
}

type Field = { path: string; message: string };

function notFoundAsUndefined(err: unknown): undefined {
  if (err instanceof LatchkeyError && err.code === 'not_found') return undefined;
  throw err;
}

function fieldsOf(err: unknown): Field[] {
  if (err instanceof LatchkeyError && err.code === 'validation_failed' && Array.isArray(err.details?.fields)) return err.details.fields as Field[];
  throw err;
}

/**
 * Users' and end users' own credentials for per-user `api_key`, `basic` and `bearer` connectors,
 * kept as their connections (the secret sealed, bound to connector, user and end-user config). The
 * API (`PUT /api/v1/connectors/{id}/connection`) and the hosted connect page both store through
 * {@link UserCredentials.save}; the proxy and `/token` read through it.
 *
 * @example
 * const credentials = createUserCredentials({ store, connectors, audit });
 * await credentials.save(actor, tenantId, connectorId, { endUserId: 'u-42' }, { credential: { key: apiKey } });
 * const { credential } = await credentials.credentialFor(await connectors.getResolved(tenantId, connectorId), { endUserId: 'u-42' });
 */
export function createUserCredentials(options: UserCredentialsOptions): UserCredentials {
  const { store, connectors, audit, logger } = options;
  const sink = options.onConnectionEvent;

  function perUserStatic(resolved: ResolvedConnector): 'api_key' | 'basic' | 'bearer' {
    const { connector } = resolved;
    if (connector.tokenMode !== 'per_user' || !isStaticCredentialAuthType(connector.authType)) {
      throw new LatchkeyError(
        'invalid_request',
        `The connector ${connector.id} does not take a credential from each user: only per_user connectors of auth type api_key, basic or bearer do.`,
      );
    }
    return connector.authType;
  }

  function ownerOf(owner: ConnectionOwner, connectorId: string): Exclude<ConnectionOwner, null> {
    assertConnectionKey(connectorId, owner);
    if (owner === null) throw new LatchkeyError('invalid_request', `The connector ${connectorId} keeps one credential per user; name the user or the end user.`);
    return owner;
  }

  async function credentialFor(resolved: ResolvedConnector, owner: ConnectionOwner) {
    perUserStatic(resolved);
    const id = connectionId(resolved.connector.id, ownerOf(owner, resolved.connector.id));
    const current = await readConnection(store, resolved.connector.tenantId, id);
    if (!current) throw connectionError('not_connected', `There is no connection ${id}; connect the account first.`);
    const a = current.attributes;
    const forUser = resolved.endUserFields.length > 0 ? resolveForEndUser(resolved, a.config) : resolved;
    return { credential: credentialWith(forUser, a.credential ?? {}), resolved: forUser };
  }

  return {
    async save(actor, tenantId, connectorId, owner, input) {
      const who = ownerOf(owner, connectorId);
      const resolved = await connectors.getResolved(tenantId, connectorId);
      const authType = perUserStatic(resolved);
      const fields: Field[] = [];
      let credential: UserCredential | undefined;
      let config: Record<string, string> = {};
      if (!isRecord(input)) {
        fields.push({ path: '', message: 'must be an object with "credential"' });
      } else {
        for (const key of Object.keys(input)) if (key !== 'credential' && key !== 'config') fields.push({ path: key, message: 'is not part of a connection (credential, config)' });
        try {
          credential = parseUserCredential(authType, input.credential);
        } catch (err) {
          fields.push(...fieldsOf(err));
        }
        try {
          // Checks the end-user fields against the provider, and that the URLs they make are sound.
          config = { ...resolveForEndUser(resolved, input.config ?? {}).endUserConfig };
        } catch (err) {
          fields.push(...fieldsOf(err));
        }
      }
      const [first] = fields;
      if (first || credential === undefined) {
        const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : '';
        const where = first ? `"${first.path}" ${first.message}`.replace(/^"" /, '') : 'is missing';
        throw new LatchkeyError('validation_failed', `The connection is invalid: ${where}${more}.`, { details: { fields } });
      }
      const id = connectionId(connectorId, who);
      const attributes = credentialAttributes(connectorId, who, authType, credential, config);
      // The connection, its audit record and its event commit together (the event first, as for OAuth tokens).
      const saved = await store.transaction(async (tx) => {
        await tx.lock(CONNECTION_TYPE, tenantId, id);
        const before = sink ? await tx.store.get(CONNECTION_TYPE, tenantId, id).catch(notFoundAsUndefined) : undefined;
        if (sink) {
          const type = before !== undefined && before.attributes.status !== 'active' ? 'connection.recovered' : 'connection.created';
          const data = { connectorId, connectionId: id, userId: typeof who === 'string' ? who : null, endUserId: isEndUser(who) ? who.endUserId : null, status: 'active' as const, errorCode: null };
          await recordConnectionEvent(sink, { type, tenantId, data }, tx, logger);
        }
        const view = await upsertConnection(tx.store, tenantId, id, attributes);
        if (audit) await audit.record(tx.db, { tenantId, actor, action: 'connection.credential_saved', target: connectorId, details: { ...ownerDetails(who), authType } });
        return view;
      });
      return saved;
    },

    credentialFor,

    async issue(actor, tenantId, connectorId, owner) {
      const { credential } = await credentialFor(await connectors.getResolved(tenantId, connectorId), owner);
      if (audit) {
        await store.transaction(async (tx) => {
          await audit.record(tx.db, { tenantId, actor, action: 'connector.credential_issued', target: connectorId, details: { ...ownerDetails(owner), authType: credential.authType } });
        });
      }
      return credential;
    },
  };
}
