import { defineConfig } from 'vite';

// The web console: built into dist/console by `npm run build` (and `prepare`, so `npm install`
// builds it), served by Latchkey at /console. Paths are relative to the package root, where npm
// runs scripts. No inline script anywhere (the CSP refuses it): no module-preload polyfill.
export default defineConfig({
  root: 'console',
  base: '/console/',
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../dist/console',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
    rolldownOptions: { input: { index: 'console/index.html', connected: 'console/connected.html' } },
  },
});
