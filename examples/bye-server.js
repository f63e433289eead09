'use strict';
// node examples/bye-server.js [--port 9002]: an MCP server with one tool, echoBye(userName) → "Bye, {userName}!".
const { startExampleServer, portFromArgs } = require('./upstream-server');

startExampleServer({
  name: 'bye',
  port: portFromArgs(9002),
  tool: {
    name: 'echoBye',
    title: 'Say goodbye',
    description: 'Says goodbye to a user by name',
    reply: (u) => `Bye, ${u}!`,
  },
});
