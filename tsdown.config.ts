import { defineConfig } from 'tsdown'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    client: 'src/client.ts',
    server: 'src/server.ts',
    cli: 'src/cli.ts',
    vite: 'src/vite.ts',
    rollup: 'src/rollup.ts',
    rolldown: 'src/rolldown.ts',
    webpack: 'src/webpack.ts',
    rspack: 'src/rspack.ts',
    esbuild: 'src/esbuild.ts',
    // The engine threads' body (src/engine/threads.ts loads it by this name, next to its own chunk).
    'engine-thread': 'src/engine/thread.ts',
  },
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  dts: true,
  clean: true,
  shims: false,
  // The package is "type": "module": plain .js and .d.ts match the exports map.
  fixedExtension: false,
})
