/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The bundle is committed and embedded in the binary, and CI checks that a rebuild changes nothing:
// file names carry content hashes only, and no build time or absolute path goes into the output.
export default defineConfig({
  base: '/editor/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1600,
  },
  server: {
    // `npm run dev` talks to a local `orderflow serve`.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
