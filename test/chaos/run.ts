/**
 * The chaos suite (issue 16), full counts: `npm run test:chaos` (root: it mounts a tmpfs).
 *
 *   node --disable-warning=ExperimentalWarning test/chaos/run.ts [--short] [--only a,b] [--strict] [--json]
 *
 * Each scenario prints held sessions lost, new sessions failed, moments with no member accepting,
 * commands that lied (returned 0 without the effect) and RSS before/after. Exits 1 on any loss outside
 * the known-open scenarios (`knownOpen` in chaos-suite.ts); `--strict` counts those too (to see whether
 * their fixes have landed).
 */
import { parseArgs } from 'node:util';
import { anyLoss, fullScale, runChaos, shortScale } from './chaos-suite.ts';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
  },
});
const startedAt = Date.now();
const reports = await runChaos({
  scale: values.short ? shortScale : fullScale,
  ...(values.only ? { only: values.only.split(',') } : {}),
  ...(values.strict ? { knownOpen: {} } : {}),
  log: (line) => process.stdout.write(`${line}\n`),
});
if (values.json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
const failed = reports.filter((r) => r.verdict === 'fail' || r.verdict === 'error').map((r) => r.name);
const open = reports.filter((r) => r.verdict === 'known-open').map((r) => `${r.name} (${r.knownOpen})`);
process.stdout.write(
  `chaos: ${reports.length} scenarios in ${((Date.now() - startedAt) / 1000).toFixed(0)} s; ` +
    `${failed.length ? `LOST in ${failed.join(', ')}` : 'nothing lost'}` +
    `${open.length ? `; known open: ${open.join(', ')}` : ''}\n`,
);
process.exitCode = anyLoss(reports) ? 1 : 0;
