import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createApiApp } from './api-app.ts';
import { apiBase, InMemoryPool, sleep } from './api-test-support.ts';

const contrib = resolve(import.meta.dirname, '..', '..', 'contrib');

/** The series names a PromQL expression reads (`ebb_…`), without a histogram's `_bucket` and the like. */
function seriesIn(expr: string): string[] {
  return [...expr.matchAll(/\bebb_[a-z_]+/g)].map(([name]) => name);
}

/**
 * The shipped files (operator audit, "missing things"): the alert rules and the dashboard query only
 * series that `/metrics` has, with labels it has, and the systemd units are valid.
 */
describe('contrib/: alert rules, dashboard and units', () => {
  const pool = new InMemoryPool();
  /** Every `name{labels}` line of a scrape: the names and, per name, the label names. */
  const scraped = new Map<string, Set<string>>();

  before(async () => {
    await pool.start();
    const app = createApiApp({ state: pool.state, controller: pool.controller });
    await pool.agentUp('m1');
    await pool.status('m1', 'alpha', { sessions: 1 });
    await pool.event({ code: 'service.drained', member: 'm1', service: 'alpha', data: { drainMs: 1000 } });
    await sleep(20); // the histogram is observed when the event arrives
    const text = await (await app.request(`${apiBase}/metrics`)).text();
    for (const line of text.split('\n')) {
      const match = /^([a-z_]+)(?:\{([^}]*)\})? /.exec(line);
      if (!match) continue;
      const labels = scraped.get(match[1]!) ?? new Set<string>();
      for (const [, label] of (match[2] ?? '').matchAll(/([a-z_]+)="/g)) labels.add(label!);
      scraped.set(match[1]!, labels);
    }
  });
  after(() => pool.close());

  const assertQueries = (where: string, exprs: string[]) => {
    assert.ok(exprs.length > 0, `${where} has queries`);
    for (const expr of exprs) {
      const names = seriesIn(expr);
      assert.ok(names.length > 0, `${where}: ${expr} reads an ebb series`);
      for (const name of names) {
        assert.ok(scraped.has(name), `${where}: ${name} (in ${expr}) is not in /metrics`);
        // Labels matched in braces right after the name must be labels the series has.
        const braces = new RegExp(`${name}\\{([^}]*)\\}`).exec(expr)?.[1] ?? '';
        for (const [, label] of braces.matchAll(/([a-z_]+)\s*[=!]~?"/g))
          assert.ok(scraped.get(name)!.has(label!), `${where}: ${name} has no label ${label}`);
      }
    }
  };

  it('every alert rule reads series /metrics has, and has a summary', () => {
    const rules = parseYaml(readFileSync(join(contrib, 'prometheus', 'ebb-alerts.yml'), 'utf8')) as {
      groups: Array<{
        name: string;
        rules: Array<{ alert: string; expr: string; annotations: { summary: string } }>;
      }>;
    };
    const all = rules.groups.flatMap((g) => g.rules);
    assert.ok(all.some((r) => r.alert === 'EbbPoolBelowCapacityGuard'));
    assert.ok(all.some((r) => r.alert === 'EbbAgentDown'));
    for (const rule of all) assert.ok(rule.annotations.summary, `${rule.alert} has a summary`);
    assertQueries(
      'ebb-alerts.yml',
      all.map((r) => r.expr),
    );
  });

  it('the same rules as docs/metrics.md shows', () => {
    const doc = readFileSync(resolve(contrib, '..', 'docs', 'metrics.md'), 'utf8');
    const shown = /## Sample alerts\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const file = readFileSync(join(contrib, 'prometheus', 'ebb-alerts.yml'), 'utf8');
    assert.ok(file.includes(shown.trimEnd()), 'the file starts from the documented rules');
  });

  it('every dashboard panel queries series /metrics has, with its labels', () => {
    const dashboard = JSON.parse(readFileSync(join(contrib, 'grafana', 'ebb-dashboard.json'), 'utf8')) as {
      uid: string;
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
      templating: { list: Array<{ name: string; query: string }> };
    };
    assert.equal(dashboard.uid, 'ebb-pool');
    assert.ok(dashboard.panels.length >= 8);
    for (const panel of dashboard.panels)
      assertQueries(
        `panel "${panel.title}"`,
        panel.targets.map((t) => t.expr),
      );
    const variables = dashboard.templating.list.filter((v) => v.name !== 'datasource');
    assertQueries(
      'dashboard variables',
      variables.map((v) => v.query),
    );
  });

  it('the systemd units pass systemd-analyze verify', (t) => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip('no systemd-analyze here');
    const dir = mkdtempSync(join(tmpdir(), 'ebb-units-'));
    try {
      for (const unit of readdirSync(join(contrib, 'systemd'))) {
        // The binary is not installed here: the same unit with a command that exists.
        const text = readFileSync(join(contrib, 'systemd', unit), 'utf8');
        assert.match(text, /^ExecStart=\/opt\/ebb\/node_modules\/\.bin\/ebb /m, unit);
        writeFileSync(join(dir, unit), text.replaceAll('/opt/ebb/node_modules/.bin/ebb', '/bin/true'));
      }
      const units = readdirSync(dir).filter((f) => f.endsWith('.service'));
      const run = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(dir, u))], {
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
      assert.equal(run.stderr.trim(), '', run.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
