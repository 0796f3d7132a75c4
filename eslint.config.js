import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

export default tseslint.config(
  // assembly/*.ts is AssemblyScript (its own types and decorators), compiled by assembly/build.mjs.
  { ignores: ['assembly/**/*.ts', 'dist/**', 'node_modules/**', 'coverage/**', 'playground/dist/**', '**/.tmp/**', 'test/fixtures/**/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      'no-console': ['error', { allow: ['warn', 'error'] }],
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: globals.node },
  },
  {
    // Code that runs in the page the playground and the fixtures build.
    files: ['playground/src/**', 'test/fixtures/**/src/**'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['src/cli.ts', 'src/cli/**', 'bench/**', 'playground/**', 'test/**', '.ci/**'],
    rules: { 'no-console': 'off' },
  },
)
