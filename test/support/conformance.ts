import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** Running @modelcontextprotocol/conformance's server scenarios from tests, and reading its summary. */

const RUNNER = path.join(__dirname, '..', 'conformance', 'run-conformance.js');
export const BASELINE = path.join(__dirname, '..', 'conformance', 'baseline.yml');
/** One suite run takes ~6 s here; the first on a machine also downloads node@22 and the suite. */
export const SUITE_TIMEOUT_MS = 5 * 60_000;

/** The active server scenarios of @modelcontextprotocol/conformance 0.1.16, in the order it runs them. */
export const ACTIVE_SCENARIOS = [
  'server-initialize',
  'logging-set-level',
  'ping',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'server-sse-multiple-streams',
  'elicitation-sep1330-enums',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
];

/**
 * What the scenarios call, written out here rather than taken from the fixture's tables, so a fixture
 * that lost one fails this test. (Several scenarios cannot tell a missing fixture from a present one:
 * `tools-call-error` accepts any error result, an "unknown tool" one included; `tools-list`,
 * `resources-list` and `prompts-list` pass on empty lists.)
 */
export const SCENARIO_TOOLS = [
  'test_simple_text',
  'test_image_content',
  'test_audio_content',
  'test_embedded_resource',
  'test_multiple_content_types',
  'test_tool_with_logging',
  'test_tool_with_progress',
  'test_error_handling',
  'test_sampling',
  'test_elicitation',
  'test_elicitation_sep1034_defaults',
  'test_elicitation_sep1330_enums',
  // Used by the two pending scenarios, json-schema-2020-12 and server-sse-polling.
  'json_schema_2020_12_tool',
  'test_reconnection',
];
export const SCENARIO_RESOURCES = ['test://static-text', 'test://static-binary', 'test://watched-resource'];
export const SCENARIO_TEMPLATES = ['test://template/{id}/data'];
export const SCENARIO_PROMPTS = [
  'test_simple_prompt',
  'test_prompt_with_arguments',
  'test_prompt_with_embedded_resource',
  'test_prompt_with_image',
];

export interface RunResult {
  exitCode: number | null;
  output: string;
}

/** Runs the conformance script asynchronously: the fixture answers from this same process. */
export function runConformance(url: string, ...options: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, url, ...options], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, output }));
  });
}

/** The `=== SUMMARY ===` lines: `✓ <scenario>: <n> passed, <m> failed`. */
export function parseSummary(output: string): Array<{ scenario: string; ok: boolean; passed: number; failed: number }> {
  const summary = output.slice(output.indexOf('=== SUMMARY ==='));
  return [...summary.matchAll(/^([✓✗]) (\S+): (\d+) passed, (\d+) failed$/gm)].map((match) => ({
    scenario: match[2] ?? '',
    ok: match[1] === '✓',
    passed: Number(match[3]),
    failed: Number(match[4]),
  }));
}
