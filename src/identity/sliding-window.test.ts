import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingWindow } from './index.js';

describe('sliding window', () => {
  it('allows `limit` events per window, then says how long to wait', () => {
    const w = new SlidingWindow({ limit: 3, windowMs: 1000 });
    for (const t of [0, 100, 200]) {
      assert.equal(w.retryAfterMs('a', t), 0);
      w.hit('a', t);
    }
    assert.equal(w.retryAfterMs('a', 300), 700);
    assert.equal(w.retryAfterMs('b', 300), 0);
    // The oldest event leaves the window at 1000.
    assert.equal(w.retryAfterMs('a', 1000), 0);
    w.hit('a', 1000);
    assert.equal(w.retryAfterMs('a', 1001), 99);
  });

  it('forgets a key on reset', () => {
    const w = new SlidingWindow({ limit: 1, windowMs: 1000 });
    w.hit('a', 0);
    assert.ok(w.retryAfterMs('a', 1) > 0);
    w.reset('a');
    assert.equal(w.retryAfterMs('a', 1), 0);
  });

  it('keeps at most maxKeys keys, forgetting the least recently hit', () => {
    const w = new SlidingWindow({ limit: 1, windowMs: 10_000, maxKeys: 2 });
    w.hit('a', 0);
    w.hit('b', 1);
    w.hit('c', 2);
    assert.equal(w.retryAfterMs('a', 3), 0);
    assert.ok(w.retryAfterMs('b', 3) > 0);
    assert.ok(w.retryAfterMs('c', 3) > 0);
  });

  it('refuses nonsense options', () => {
    assert.throws(() => new SlidingWindow({ limit: 0, windowMs: 1000 }), TypeError);
    assert.throws(() => new SlidingWindow({ limit: 1, windowMs: 0 }), TypeError);
  });
});
