import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_ROLES, PERMISSIONS, actorLabel, isBuiltinRole, isPermission } from './index.js';

describe('permissions and built-in roles', () => {
  it('admin holds every permission; editor and viewer hold the documented sets', () => {
    assert.deepEqual([...BUILTIN_ROLES.admin].sort(), [...PERMISSIONS].sort());
    assert.deepEqual([...BUILTIN_ROLES.editor].sort(), [
      'apikeys:read',
      'apikeys:write',
      'connectors:read',
      'connectors:token',
      'connectors:use',
      'connectors:write',
      'tasks:read',
      'tasks:write',
      'webhooks:read',
      'webhooks:write',
    ]);
    assert.deepEqual([...BUILTIN_ROLES.viewer].sort(), ['apikeys:read', 'connectors:read', 'tasks:read']);
  });

  it('built-in roles cannot be changed at run time', () => {
    assert.throws(() => (BUILTIN_ROLES.viewer as string[]).push('identity:admin'), TypeError);
    assert.throws(() => {
      (BUILTIN_ROLES as Record<string, unknown>)['viewer'] = [];
    }, TypeError);
  });

  it('recognises permissions and built-in role names only', () => {
    assert.equal(isPermission('audit:read'), true);
    assert.equal(isPermission('audit:write'), false);
    assert.equal(isPermission(42), false);
    assert.equal(isBuiltinRole('editor'), true);
    assert.equal(isBuiltinRole('toString'), false);
    assert.equal(isBuiltinRole('auditor'), false);
  });

  it('labels actors for the audit log', () => {
    assert.equal(actorLabel({ type: 'user', tenantId: 'ten_1', userId: 'usr_x' }), 'user:usr_x');
    assert.equal(actorLabel({ type: 'user', tenantId: 'ten_1', userId: 'usr_x', apiKeyId: 'key_x' }), 'api_key:key_x');
    assert.equal(actorLabel({ type: 'system' }), 'system');
  });
});
