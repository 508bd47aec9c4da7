import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateRandomState } from 'oauth4webapi';
import { isStateValue, stateObjectId } from './state.js';

describe('OAuth state ids', () => {
  it('derives a stable id from the state value that does not contain it', () => {
    const state = generateRandomState();
    assert.ok(isStateValue(state), 'oauth4webapi states are 256 bits in base64url');
    const id = stateObjectId(state);
    assert.match(id, /^st_[A-Za-z0-9_-]{43}$/);
    assert.equal(stateObjectId(state), id);
    assert.notEqual(stateObjectId(generateRandomState()), id);
    assert.ok(!id.includes(state));
  });

  it('recognises only well-formed state values', () => {
    for (const bad of ['', 'short', `${'a'.repeat(43)}=`, 'a'.repeat(44), `${'a'.repeat(42)}!`, 42, null, undefined]) {
      assert.equal(isStateValue(bad), false, String(bad));
    }
  });
});
