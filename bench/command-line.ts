/**
 * The command line of every bench script: `--help` prints its usage (exit 0), and an option it does not know, a
 * missing value or a value it refuses ends it with that one line and its usage (exit 2), before it starts anything.
 * Both happen in `runScript`, which the script's `main` reaches by throwing.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command line the script cannot run; `runScript` prints it with the usage. */
export class UsageError extends Error {}

/** `--help` was given: `runScript` prints the usage and ends the script there. */
class HelpRequested extends Error {}

type Parsed<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;

/** `parseArgs`, strict, plus `--help` / `-h`, which ends the script with its usage (through `runScript`). */
export function parseCommandLine<T extends ParseArgsConfig>(config: T): Parsed<T> {
  let parsed: Parsed<T>;
  try {
    parsed = parseArgs({
      ...config,
      strict: true,
      options: { ...config.options, help: { type: 'boolean', short: 'h' } },
    }) as Parsed<T>;
  } catch (error) {
    // node:util's own: an unknown option, a value missing or given to a flag, a stray argument.
    if (String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError((error as Error).message);
    }
    throw error;
  }
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested();
  return parsed;
}

/** `text` as a whole number from `min` to `max`, or a UsageError naming the option. */
export function wholeNumber(text: string, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      max === Number.MAX_SAFE_INTEGER
        ? `--${option} must be a whole number ≥ ${min}`
        : `--${option} must be a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/**
 * Runs a script's `main` and exits: 0 when it resolves, or with the usage on `--help`; 2 with `<name>: <problem>` and
 * the usage on a UsageError; 1 with the stack on anything else.
 */
export function runScript(name: string, usage: string, main: () => Promise<void> | void): void {
  Promise.resolve()
    .then(main)
    .then(
      () => process.exit(0),
      (error: unknown) => {
        if (error instanceof HelpRequested) {
          process.stdout.write(usage);
          process.exit(0);
        }
        if (error instanceof UsageError) {
          process.stderr.write(`${name}: ${error.message}\n\n${usage}`);
          process.exit(2);
        }
        process.stderr.write(
          `${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
        );
        process.exit(1);
      },
    );
}
