/**
 * Builds the web UI into web/dist: `npm run build:web`. Preact's JSX is compiled by Vite's own
 * transformer (no plugin needed). `npx vite --config web/vite.config.ts` serves it with live reload
 * on :5173 and proxies the API paths to `npm run dev` on :3000, so the UI stays same-origin.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const api = process.env.API_URL ?? 'http://localhost:3000';

export default defineConfig({
  root,
  base: '/',
  publicDir: 'public',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline polyfill script: the pages run under a Content-Security-Policy without 'unsafe-inline'.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    port: 5173,
    proxy: Object.fromEntries(['/v1', '/openapi.json', '/docs', '/.well-known'].map((path) => [path, api])),
  },
});
