#!/usr/bin/env node
'use strict';
// The CLI is compiled to dist/ by `npm run build` (run on install).
require('../dist/main.js');
