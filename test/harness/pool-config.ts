/** A pool config for tests: members on loopback aliases, ports from a random base so runs do not collide. */
export interface TestPoolOptions {
  members?: number;
  /** Third octet-free loopback base: members get 127.0.<net>.1, .2, … */
  net?: number;
  services?: Array<{ id: string; startup?: string; onRestart?: string; upstream?: string }>;
  store: string;
  localState: string;
  minAccepting?: number;
  /** First of 32 free ports (see `freePortRange`). */
  portBase: number;
}

export interface TestPool {
  yaml: string;
  apiUrl: string;
  members: Array<{ id: string; address: string; ports: Record<string, number> }>;
}

export function testPool(options: TestPoolOptions): TestPool {
  const base = options.portBase;
  const net = options.net ?? 100 + Math.floor(Math.random() * 100);
  const services = options.services ?? [{ id: 'alpha' }, { id: 'beta' }];
  const apiPort = base + 31;
  const members = Array.from({ length: options.members ?? 3 }, (_, i) => ({
    id: `m${i + 1}`,
    address: `127.0.${net}.${i + 1}`,
    ports: Object.fromEntries(services.map((s, j) => [s.id, base + j])),
  }));
  const yaml = [
    `pool: { name: test${base}, fqdn: test${base}.ebb.test, minAccepting: ${options.minAccepting ?? 1} }`,
    `store: ${options.store}`,
    `api: { listen: 127.0.0.1:${apiPort} }`,
    `agent: { leaseTtl: 2s, localState: ${options.localState} }`,
    'members:',
    ...members.flatMap((m) => [
      `  - id: ${m.id}`,
      `    address: ${m.address}`,
      '    services:',
      ...services.flatMap((s) => [
        `      - id: ${s.id}`,
        ...(s.startup ? [`        startup: ${s.startup}`] : []),
        ...(s.onRestart ? [`        onRestart: ${s.onRestart}`] : []),
        `        listeners: [{ protocol: tcp, port: ${m.ports[s.id]}, upstream: ${s.upstream ?? 'builtin:echo'} }]`,
      ]),
    ]),
  ].join('\n');
  return { yaml, apiUrl: `http://127.0.0.1:${apiPort}`, members };
}
