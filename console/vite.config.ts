import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

/**
 * The web console, built by `vite build console` into `console/dist`, which the API serves at `/`.
 * `vite console` runs a dev server that forwards API calls to EBB_API (default http://127.0.0.1:7070).
 */
const api = process.env['EBB_API'] ?? 'http://127.0.0.1:7070';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    host: '127.0.0.1',
    proxy: { '/v1': api, '/metrics': api, '/healthz': api },
  },
});
