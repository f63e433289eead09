import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

/** One of the example upstream servers in examples/, run as its own process on a free port. */
export class ExampleServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static start(script: 'greet-server.js' | 'bye-server.js'): Promise<ExampleServer> {
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'examples', script), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /on (http:\/\/\S+\/mcp)/.exec(output);
        if (match?.[1]) resolve(new ExampleServer(child, match[1]));
      });
      child.on('exit', (code) => reject(new Error(`${script} exited with ${code}: ${output}`)));
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
