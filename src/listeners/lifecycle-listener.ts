import type { ListenerLifecycle } from './listener-lifecycle.ts';
import type { ListenerStats } from './listener-stats.ts';
import type { Listener, ListenerState } from './listener.ts';

/**
 * The commands every listener hands to its `ListenerLifecycle` (the one place its state changes): a kind
 * extends this, builds its lifecycle with its own socket hooks, and adds only what is its own — the
 * sessions it keeps and how it counts them.
 */
export abstract class LifecycleListener implements Listener {
  abstract readonly description: string;
  protected abstract readonly life: ListenerLifecycle;

  abstract stats(): ListenerStats;

  get state(): ListenerState {
    return this.life.state;
  }

  open(refusing: boolean): Promise<void> {
    return this.life.open(refusing);
  }

  refuse(): Promise<void> {
    return this.life.refuse();
  }

  accept(): Promise<void> {
    return this.life.accept();
  }

  endSessions(): Promise<number> {
    return this.life.endSessions();
  }

  close(): Promise<void> {
    return this.life.close();
  }

  closeToNew(): Promise<void> {
    // A close that fails is the close()'s caller's to hear about; this one waits only for the stop.
    this.close().catch(() => {});
    return this.life.stoppedTaking();
  }

  destroy(): Promise<number> {
    return this.life.destroy();
  }
}
