import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * The MCP Inspector release the tests drive. 2.12.0 declares Node ≥22.19 but
 * its CLI runs on Node 20 (npm only warns, EBADENGINE).
 */
export const INSPECTOR_PACKAGE = '@modelcontextprotocol/inspector@2.12.0';
/** The first run on a machine downloads the package (~10 s here); later runs start from npm's cache. */
export const INSPECTOR_TIMEOUT_MS = 180_000;

/** Exit codes of the inspector CLI. */
export const INSPECTOR_EXIT = { ok: 0, authRequired: 3, unreachable: 4, toolError: 5 } as const;

export interface InspectorRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `inspector --cli <url> --transport http <args…>` asynchronously (the
 * gateway under test answers from this same process). Its catalog goes to a
 * scratch directory, so nothing lands in the developer's home.
 */
export async function runInspector(url: string, args: string[]): Promise<InspectorRun> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'mcp-inspector-'));
  try {
    return await new Promise<InspectorRun>((resolve, reject) => {
      const child = spawn('npx', ['-y', INSPECTOR_PACKAGE, '--cli', url, '--transport', 'http', ...args], {
        env: { ...process.env, MCP_CATALOG_PATH: path.join(scratch, 'mcp.json'), NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
