import { render } from 'preact';
import { ensureToken, eventsUrl } from './api-client.ts';
import { App } from './app.tsx';
import { LivePool } from './live-pool.ts';
import './styles.css';

await ensureToken();
render(<App live={new LivePool(eventsUrl())} />, document.getElementById('app')!);
