import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { safeText } from './safe-text.ts';

describe('safeText: nothing raw reaches the terminal', () => {
  it('escapes ESC, CR, NUL, DEL and C1 controls; leaves printable text alone', () => {
    assert.equal(safeText('a\u001b[2Jb'), 'a\\u001b[2Jb');
    assert.equal(safeText('x\r\n\u0000\u007f\u009b'), 'x\\u000d\\u000a\\u0000\\u007f\\u009b');
    assert.equal(
      safeText('port 127.0.0.1:7000 in use — ünïcode ✓'),
      'port 127.0.0.1:7000 in use — ünïcode ✓',
    );
  });

  it('property: the output holds no control character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        for (const c of safeText(text)) {
          const code = c.charCodeAt(0);
          assert.ok(code >= 0x20 && !(code >= 0x7f && code <= 0x9f), `control character ${code}`);
        }
      }),
    );
  });
});
