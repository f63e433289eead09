/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  transform: { '^.+\\.([cm]?js|ts)$': '@swc/jest' },
  // jose and the schema engine's wasm glue are ESM-only, and PGlite loads Node builtins with import():
  // swc turns both into require. Everything else in node_modules is CommonJS.
  transformIgnorePatterns: ['/node_modules/(?!(jose|@prisma/schema-engine-wasm|@electric-sql/pglite)/)'],
  // Lazy imports in src name the compiled file (`../bootstrap.js`); under Jest that is the .ts source.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 60000,
  maxWorkers: 2,
};
