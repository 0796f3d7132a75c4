import { defineConfig } from 'vite'
import megaoptim from 'unplugin-megaoptim/vite'

// No apiKey and no MEGAOPTIM_API_KEY: the plugin starts its embedded, sharp-powered server on 127.0.0.1.
export default defineConfig({
  build: {
    // Keep every image a file of its own, so each one goes through the plugin.
    assetsInlineLimit: 0,
  },
  plugins: [
    megaoptim({
      // WebP siblings, with the HTML and CSS pointed at them (`vite preview` negotiates the JS-imported ones).
      webp: true,
      cache: '.cache/megaoptim',
      report: 'dist/megaoptim-report.json',
    }),
  ],
})
