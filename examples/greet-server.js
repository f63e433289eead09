'use strict';
// node examples/greet-server.js [--port 9001]: an MCP server with one tool, echoHai(userName) → "Hello, {userName}!".
const { startExampleServer, portFromArgs } = require('./upstream-server');

startExampleServer({
  name: 'greet',
  port: portFromArgs(9001),
  tool: { name: 'echoHai', title: 'Say hello', description: 'Greets a user by name', reply: (u) => `Hello, ${u}!` },
});
