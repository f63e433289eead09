'use strict';
// Validates Kubernetes objects against the JSON schemas of the Kubernetes release that kubernetes-models
// is generated from (its validators are Ajv, compiled ahead from the Kubernetes OpenAPI definitions).
// It runs as a child process of the tests: kubernetes-models is ESM-only, which Jest on Node 20 cannot
// load, and plain Node can.
//
// stdin: a JSON array of objects. stdout: a JSON array with, for each object, its list of errors.
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const root = path.dirname(require.resolve('kubernetes-models/package.json'));

async function errorsOf(object) {
  // apps/v1 Deployment → apps/v1/Deployment.js; v1 ConfigMap → v1/ConfigMap.js
  const file = path.join(root, ...String(object.apiVersion).split('/'), `${object.kind}.js`);
  if (!fs.existsSync(file)) return [`no schema for ${object.apiVersion} ${object.kind}`];
  const Model = (await import(pathToFileURL(file).href))[object.kind];
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
}

async function main() {
  const objects = JSON.parse(fs.readFileSync(0, 'utf8'));
  const results = [];
  for (const object of objects) results.push(await errorsOf(object));
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
