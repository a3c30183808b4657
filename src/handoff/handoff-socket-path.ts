import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';

/** sockaddr_un holds 108 bytes with the trailing NUL; a longer path cannot be bound at all. */
const maxSocketPath = 107;

/**
 * Where the process running `scope` of `pool` listens for the process that will replace it (SPEC §13):
 * `<agent.localState>/handoff/<hash>.sock`, in a directory only its user may enter, so no other user of
 * the machine can tell Ebb to stop accepting. `scope` names what the process runs (`up`, `agent m1`,
 * `api 127.0.0.1:7070`): only a process starting the same parts of the same pool finds it. A localState
 * too deep for a socket path falls back to a per-user directory under the system's temp directory.
 */
export function handoffSocketPath(localState: string, pool: string, scope: string): string {
  const hash = createHash('sha256').update(`${pool}\0${scope}`).digest('hex').slice(0, 16);
  const file = `${hash}.sock`;
  const preferred = join(resolve(localState), 'handoff');
  const dir =
    join(preferred, file).length <= maxSocketPath
      ? preferred
      : join(tmpdir(), `ebb-handoff-${process.getuid?.() ?? 'user'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is only for a directory it creates (and umask applies): make sure of it either way.
  chmodSync(dir, 0o700);
  return join(dir, file);
}

/**
 * A connection to the control socket at `path`, or the error of the connect: ENOENT or ECONNREFUSED when
 * no process listens there (none, or one that is gone and left its file).
 */
export function connectToControlSocket(path: string): Promise<Socket | NodeJS.ErrnoException> {
  return new Promise((done) => {
    const socket = connect(path);
    socket.once('connect', () => done(socket));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err));
  });
}
