/**
 * The folder table of ARCHITECTURE.md ("| folder | owns | may import |") checked against the code, so the
 * map stays true (issue 9, item 8). Every `import … from`, `export … from`, `import '…'` and `import('…')`
 * in src/** (tests included) must name a file of its own folder, or of a folder its row allows — and a
 * file of another src/ folder only through that folder's `index.ts` ("its public face").
 *
 * The table is parsed strictly: a row for a folder that does not exist, a src/ folder without a row, a
 * "may import" entry that names no folder of the table, or a table whose header changed fails the test.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');

/**
 * Imports that break the table today. Each must go (fix the import, or change the table if the table is
 * what is wrong) — and when one no longer occurs the test fails until its entry is removed here, so this
 * list can only shrink. Keyed by importing file and the specifier as written.
 */
const knownViolations: ReadonlyArray<{ file: string; imports: string; why: string }> = [
  // Unit tests that start a whole pool to test their own folder: the runner sits above them.
  {
    file: 'src/api/api-app.test.ts',
    imports: '../runner/index.ts',
    why: 'api may import core, config, control, auth',
  },
  {
    file: 'src/control/controller.test.ts',
    imports: '../runner/index.ts',
    why: 'control may import core, config, store',
  },
  // The api tests' in-memory pool opens a SQLite store itself.
  {
    file: 'src/api/api-test-support.ts',
    imports: '../store/index.ts',
    why: 'api may import core, config, control, auth',
  },
  // The etcd conformance run needs a real cluster; the cluster starter lives in the e2e harness.
  {
    file: 'src/store/etcd-store.test.ts',
    imports: '../../test/harness/etcd-cluster.ts',
    why: 'store may import core',
  },
];

interface FolderRule {
  /** `src/core/`, `console/`, … as written in the table (with the trailing slash). */
  folder: string;
  /** Path prefixes (from the repository root, each ending in `/`) this folder may import from. */
  allowed: string[];
  /** The "may import" cell as written, for messages. */
  text: string;
  line: number;
}

interface Violation {
  file: string;
  line: number;
  specifier: string;
  rule: string;
}

const header = ['folder', 'owns', 'may import'];

/**
 * Parses the folder table of `markdown`. `isDir(path)` says whether a folder exists (path from the
 * root, ending in `/`); `srcFolders` are the folders directly under src/. Throws naming the line.
 */
function parseFolderTable(
  markdown: string,
  isDir: (path: string) => boolean,
  srcFolders: readonly string[],
): FolderRule[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => cells(l)?.join('|') === header.join('|'));
  if (start < 0) throw new Error(`ARCHITECTURE.md: no table with the header | ${header.join(' | ')} |`);
  const separator = cells(lines[start + 1] ?? '');
  if (!separator || separator.length !== 3 || !separator.every((c) => /^:?-{3,}:?$/.test(c)))
    throw new Error(
      `ARCHITECTURE.md:${start + 2}: the folder table's header is not followed by |---|---|---|`,
    );

  const raw: Array<{ folder: string; cell: string; line: number }> = [];
  for (let i = start + 2; i < lines.length; i++) {
    const row = cells(lines[i] ?? '');
    if (!row) break;
    const at = `ARCHITECTURE.md:${i + 1}`;
    if (row.length !== 3) throw new Error(`${at}: a folder row has ${row.length} cells, not 3`);
    const [folderCell, , importCell] = row as [string, string, string];
    const folder = /^`((?:[a-z0-9-]+\/)+)`$/.exec(folderCell)?.[1];
    if (!folder) throw new Error(`${at}: the folder cell ${folderCell} is not a \`path/\``);
    if (folder.startsWith('src/') && !/^src\/[a-z0-9-]+\/$/.test(folder))
      throw new Error(`${at}: ${folder}: src/ rows name folders directly under src/`);
    if (raw.some((r) => r.folder === folder)) throw new Error(`${at}: ${folder} has two rows`);
    if (!isDir(folder)) throw new Error(`${at}: ${folder} does not exist (renamed or removed?)`);
    raw.push({ folder, cell: importCell, line: i + 1 });
  }
  if (raw.length === 0) throw new Error(`ARCHITECTURE.md:${start + 1}: the folder table has no rows`);
  const missing = srcFolders.filter((name) => !raw.some((r) => r.folder === `src/${name}/`));
  if (missing.length > 0)
    throw new Error(
      `ARCHITECTURE.md: ${missing.map((name) => `src/${name}/`).join(', ')} missing from the folder table (add a row: | \`src/<name>/\` | owns | may import |)`,
    );

  const folders = raw.map((r) => r.folder);
  return raw.map((r, index) => {
    const at = `ARCHITECTURE.md:${r.line}`;
    let allowed: string[];
    if (r.cell === 'nothing of ours') allowed = [];
    else if (r.cell === 'everything above') allowed = folders.slice(0, index);
    else {
      allowed = r.cell.split(',').map((entry) => {
        const name = entry.trim();
        if (!/^[a-z0-9-]+(?:\/[a-z0-9-]+)*$/.test(name))
          throw new Error(
            `${at}: "${r.cell}" is not "nothing of ours", "everything above" or a list of folders`,
          );
        const prefix = [`src/${name}/`, `${name}/`].find(
          (p) => folders.includes(p) || (folders.some((f) => p.startsWith(f) || f.startsWith(p)) && isDir(p)),
        );
        if (!prefix)
          throw new Error(`${at}: ${r.folder} may import "${name}", which is no folder of the table`);
        return prefix;
      });
    }
    return { folder: r.folder, allowed, text: r.cell, line: r.line };
  });
}

/** The cells of a markdown table row, trimmed; null when the line is not a row. */
function cells(line: string): string[] | null {
  const t = line.trim();
  if (!t.startsWith('|') || !t.endsWith('|') || t.length < 2) return null;
  return t
    .slice(1, -1)
    .split('|')
    .map((c) => c.trim());
}

/** Checks every import of every source file under `<base>/src` against `rules`. */
function checkImports(base: string, rules: readonly FolderRule[]): Violation[] {
  const violations: Violation[] = [];
  const ruleOf = (path: string) =>
    rules.filter((r) => path.startsWith(r.folder)).sort((a, b) => b.folder.length - a.folder.length)[0];
  for (const file of sourceFiles(join(base, 'src'))) {
    const from = toPosix(relative(base, file));
    const text = readFileSync(file, 'utf8');
    const own = ruleOf(from);
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      const specifier = ref.fileName;
      if (!specifier.startsWith('.') && !specifier.startsWith('/')) continue; // a package or node: builtin
      const line = text.slice(0, ref.pos).split('\n').length;
      const target = toPosix(relative(base, resolve(dirname(file), specifier)));
      const add = (rule: string) => violations.push({ file: from, line, specifier, rule });
      if (!own) {
        add(`${from} is in no folder of the table`);
        continue;
      }
      if (target.startsWith(own.folder)) continue;
      const theirs = ruleOf(target);
      if (!theirs) {
        add(`${own.folder} imports ${target}, which is in no folder of the table`);
        continue;
      }
      if (!own.allowed.some((prefix) => target.startsWith(prefix))) {
        add(`${own.folder} may import ${own.text} (ARCHITECTURE.md:${own.line}), not ${theirs.folder}`);
        continue;
      }
      if (theirs.folder.startsWith('src/') && target !== `${theirs.folder}index.ts`)
        add(`${theirs.folder} is imported only through ${theirs.folder}index.ts, not ${target}`);
    }
  }
  return violations;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(m|c)?[jt]sx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

function toPosix(path: string): string {
  return path.split(sep).join(posix.sep);
}

function rulesOf(base: string): FolderRule[] {
  const srcFolders = readdirSync(join(base, 'src'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  return parseFolderTable(
    readFileSync(join(base, 'ARCHITECTURE.md'), 'utf8'),
    (path) => existsSync(join(base, path)) && statSync(join(base, path)).isDirectory(),
    srcFolders,
  );
}

const format = (v: Violation) => `${v.file}:${v.line}: import '${v.specifier}': ${v.rule}`;
const key = (file: string, specifier: string) => `${file} → ${specifier}`;

describe('import boundaries of ARCHITECTURE.md', () => {
  it('the folder table parses, and names every src/ folder and only folders that exist', () => {
    const rules = rulesOf(root);
    assert.ok(rules.some((r) => r.folder === 'src/core/' && r.allowed.length === 0));
  });

  it('every import in src/ follows the table', () => {
    const known = new Set(knownViolations.map((k) => key(k.file, k.imports)));
    const found = checkImports(root, rulesOf(root));
    const fresh = found.filter((v) => !known.has(key(v.file, v.specifier)));
    assert.deepEqual(
      fresh.map(format),
      [],
      `imports that break the folder table:\n${fresh.map(format).join('\n')}`,
    );
  });

  it('every entry of knownViolations still occurs (remove the ones that are fixed)', () => {
    const found = new Set(checkImports(root, rulesOf(root)).map((v) => key(v.file, v.specifier)));
    const gone = knownViolations.filter((k) => !found.has(key(k.file, k.imports)));
    assert.deepEqual(gone, [], 'fixed: remove these from knownViolations in test/import-boundaries.test.ts');
  });
});

describe('the import-boundary checker itself', () => {
  const table = (rows: string[]) =>
    ['# A', '', '| folder | owns | may import |', '|---|---|---|', ...rows, '', 'prose'].join('\n');
  const dirs = new Set([
    'src/',
    'src/core/',
    'src/sip/',
    'src/listeners/',
    'src/cli/',
    'test/',
    'test/harness/',
  ]);
  const isDir = (p: string) => dirs.has(p);
  const rows = [
    '| `src/core/` | types | nothing of ours |',
    '| `src/sip/` | sip | nothing of ours |',
    '| `src/listeners/` | sockets | core, sip |',
    '| `src/cli/` | the command | everything above |',
    '| `test/` | tests | src |',
  ];

  it('reads the rules: a list, "nothing of ours", "everything above", a folder prefix', () => {
    const rules = parseFolderTable(table(rows), isDir, ['core', 'sip', 'listeners', 'cli']);
    assert.deepEqual(
      rules.map((r) => [r.folder, r.allowed]),
      [
        ['src/core/', []],
        ['src/sip/', []],
        ['src/listeners/', ['src/core/', 'src/sip/']],
        ['src/cli/', ['src/core/', 'src/sip/', 'src/listeners/']],
        ['test/', ['src/']],
      ],
    );
  });

  it('fails on a src/ folder missing from the table, a renamed folder, an unknown name, a changed header', () => {
    const folders = ['core', 'sip', 'listeners', 'cli'];
    assert.throws(
      () => parseFolderTable(table(rows), isDir, [...folders, 'http']),
      /src\/http\/ missing from the folder table/,
    );
    const renamed = rows.map((r) => r.replace('src/sip/', 'src/voip/'));
    assert.throws(() => parseFolderTable(table(renamed), isDir, folders), /src\/voip\/ does not exist/);
    const unknown = rows.map((r) => r.replace('core, sip', 'core, voip'));
    assert.throws(() => parseFolderTable(table(unknown), isDir, folders), /"voip", which is no folder/);
    const vague = rows.map((r) => r.replace('core, sip', 'core and sip'));
    assert.throws(() => parseFolderTable(table(vague), isDir, folders), /is not "nothing of ours"/);
    assert.throws(
      () => parseFolderTable(table(rows).replace('may import', 'imports'), isDir, folders),
      /no table with the header/,
    );
  });

  it('reports a planted violation with file:line and the rule; own folder and index.ts imports pass', () => {
    const base = mkdtempSync(join(tmpdir(), 'ebb-boundaries-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(base, path)), { recursive: true });
        writeFileSync(join(base, path), text);
      };
      for (const d of dirs) mkdirSync(join(base, d), { recursive: true });
      write('ARCHITECTURE.md', table(rows));
      write('src/core/index.ts', "export * from './errors.ts';\n");
      write('src/core/errors.ts', 'export const e = 1;\n');
      write('src/sip/index.ts', "import { e } from '../core/index.ts';\nexport const s = e;\n");
      write(
        'src/listeners/index.ts',
        [
          "import { e } from '../core/index.ts';",
          "import type { s } from '../sip/index.ts';",
          "export { e } from '../core/errors.ts';",
          "const later = await import('../cli/main.ts');",
          "import '../../test/harness/x.ts';",
          "import { z } from 'zod';",
          '',
        ].join('\n'),
      );
      write('src/cli/main.ts', "import { e } from '../listeners/index.ts';\n");
      const found = checkImports(base, rulesOf(base)).map(format);
      assert.deepEqual(found, [
        "src/listeners/index.ts:3: import '../core/errors.ts': src/core/ is imported only through src/core/index.ts, not src/core/errors.ts",
        "src/listeners/index.ts:4: import '../cli/main.ts': src/listeners/ may import core, sip (ARCHITECTURE.md:7), not src/cli/",
        "src/listeners/index.ts:5: import '../../test/harness/x.ts': src/listeners/ may import core, sip (ARCHITECTURE.md:7), not test/",
        "src/sip/index.ts:1: import '../core/index.ts': src/sip/ may import nothing of ours (ARCHITECTURE.md:6), not src/core/",
      ]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
