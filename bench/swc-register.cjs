'use strict';
// Lets Node require TypeScript (the bench, and the src/ modules it and the gateway it starts import) without a
// build: each .ts file is compiled by swc with the project's .swcrc, as Jest does. Use: node -r ./bench/swc-register.cjs
const fs = require('node:fs');
const Module = require('node:module');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), { filename, swcrc: true });
  module._compile(code, filename);
};

// Sources may name a sibling module as it will be compiled (`import('../bootstrap.js')`): find the .ts instead.
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  try {
    return resolveFilename.call(this, request, ...rest);
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND' || !/^\.\.?\/.*\.js$/.test(request)) throw error;
    return resolveFilename.call(this, `${request.slice(0, -3)}.ts`, ...rest);
  }
};
