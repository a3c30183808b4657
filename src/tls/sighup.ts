/**
 * One process-wide SIGHUP handler shared by every TLS source (and whatever else re-reads its files on
 * SIGHUP), so ten listeners add one signal listener, not ten. While anything is registered SIGHUP no
 * longer ends the process (Node's default); once the last goes, the default is back.
 */
const reloaders = new Set<() => void>();

function onSighup(): void {
  for (const reload of [...reloaders]) reload();
}

/** Calls `reload` on every SIGHUP until the returned function is called. */
export function onSighupReload(reload: () => void): () => void {
  if (reloaders.size === 0) process.on('SIGHUP', onSighup);
  reloaders.add(reload);
  return () => {
    if (!reloaders.delete(reload)) return;
    if (reloaders.size === 0) process.off('SIGHUP', onSighup);
  };
}
