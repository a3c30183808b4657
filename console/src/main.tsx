import { render } from 'preact';
import { App } from './app.tsx';
import { LivePool } from './live-pool.ts';
import './styles.css';

render(<App live={new LivePool()} />, document.getElementById('app')!);
