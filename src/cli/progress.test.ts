import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DrainProgress } from './progress.ts';

function stream(isTTY: boolean): NodeJS.WriteStream & { text: () => string } {
  const chunks: string[] = [];
  return {
    isTTY,
    write: (chunk: string) => chunks.push(chunk) > 0,
    text: () => chunks.join(''),
  } as unknown as NodeJS.WriteStream & { text: () => string };
}

describe('DrainProgress', () => {
  it('on a terminal, clear() removes the bar so an error starts on a clean line (audit #10)', () => {
    const out = stream(true);
    const progress = new DrainProgress('m3', out);
    progress.update(1, 'echo');
    progress.clear();
    const text = out.text();
    assert.ok(text.endsWith('\r\x1b[2K'), JSON.stringify(text));
    progress.clear();
    assert.equal(out.text(), text, 'nothing drawn, nothing to clear');
  });

  it('a note gets a line of its own, the bar is redrawn after it', () => {
    const out = stream(true);
    const progress = new DrainProgress('m3', out);
    progress.update(1);
    progress.note('m3: cannot reach the API; retrying');
    progress.update(1);
    const clearLine = '\r\x1b[2K';
    assert.ok(
      out.text().includes(`${clearLine}m3: cannot reach the API; retrying\n${clearLine}m3 `),
      JSON.stringify(out.text()),
    );
  });

  it('without a terminal: plain lines, escaped details', () => {
    const out = stream(false);
    const progress = new DrainProgress('m3', out);
    progress.update(2, 'echo\x1b[2J');
    progress.finish('m3: ready for offline');
    assert.match(
      out.text(),
      /^m3: 2 session\(s\) left \(echo\\u001b\[2J\) · \d+ms\nm3: ready for offline \(\d+ms\)\n$/,
    );
  });
});
