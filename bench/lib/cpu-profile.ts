/** Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): where the process spent its samples. */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { root } from '../../test/harness/managed-process.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of busy (non-idle) samples by where the code lives: GC, Node internals, Ebb's src, dependencies… */
  byArea: Array<{ area: string; share: number }>;
  /** The functions with the most self time. */
  top: Array<{ fn: string; share: number }>;
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)' || fn === '(root)') return 'native / V8 (program)';
  if (url.startsWith('node:')) return `node internals (${url.replace(/^node:internal\//, '').split('/')[0]})`;
  if (url.includes('/node_modules/')) return `dependency ${url.split('/node_modules/')[1]!.split('/')[0]}`;
  if (url.includes('/src/'))
    return `ebb ${url
      .slice(url.indexOf('/src/') + 1)
      .split('/')
      .slice(0, 2)
      .join('/')}`;
  return url === '' ? 'native / V8 (builtins)' : 'other';
}

export function summariseProfile(path: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  // Shares are of the busy samples: the process idles while other targets are measured.
  const isIdle = (n: ProfileNode) => n.callFrame.functionName === '(idle)';
  const total = profile.nodes.reduce((a, n) => a + (isIdle(n) ? 0 : (n.hitCount ?? 0)), 0) || 1;
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || isIdle(node)) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + hits);
    const where = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
    const key = `${functionName || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + hits);
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((x, y) => y[1] - x[1]);
  return {
    totalMs: (profile.endTime - profile.startTime) / 1000,
    byArea: sorted(areas).map(([a, h]) => ({ area: a, share: h / total })),
    top: sorted(fns)
      .slice(0, topN)
      .map(([fn, h]) => ({ fn, share: h / total })),
  };
}
