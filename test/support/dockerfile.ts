import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  type Copy,
  type Dockerfile,
  DockerfileParser,
  type From,
  type Instruction,
  type JSONInstruction,
  type ModifiableInstruction,
} from 'dockerfile-ast';

/** One build stage of a Dockerfile: its FROM (ARGs resolved) and the instructions after it. */
export interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

export interface ParsedDockerfile {
  dockerfile: Dockerfile;
  stages: Stage[];
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const dockerfile = DockerfileParser.parse(text);
  const args = new Map<string, string>();
  for (const arg of dockerfile.getInitialARGs()) {
    const property = arg.getProperty();
    if (property) args.set(property.getName(), property.getValue() ?? '');
  }
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From;
      const image = (from.getImage() ?? '').replace(/\$\{?(\w+)\}?/g, (_all, name: string) => args.get(name) ?? '');
      stages.push({ name: from.getBuildStage() ?? undefined, image, instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { dockerfile, stages };
}

export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.getKeyword() === keyword);
}

/** The variables a stage's ENV instructions set (`NAME=value` form), by name. */
export function envOf(stage: Stage): Map<string, string> {
  return new Map(
    instructionsOf(stage, 'ENV').flatMap((instruction) =>
      // Split at the first `=` only: a value may hold more (`NODE_OPTIONS=--flag=value`).
      words(instruction).map((pair): [string, string] => {
        const at = pair.indexOf('=');
        return at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
  );
}

/** The variables the repository's Dockerfile sets in its final stage: the environment the image's processes start in. */
export function imageEnvironment(): Map<string, string> {
  const text = readFileSync(path.join(__dirname, '..', '..', 'Dockerfile'), 'utf8');
  const final = parseDockerfile(text).stages.at(-1);
  return final ? envOf(final) : new Map<string, string>();
}

/** The arguments of an instruction, as words (shell form) without its flags. */
export function words(instruction: Instruction): string[] {
  return instruction.getArguments().map((argument) => argument.getValue());
}

/** `--name=value` flags of RUN, COPY, HEALTHCHECK. */
export function flagsOf(instruction: Instruction): Map<string, string | null> {
  const flags = (instruction as ModifiableInstruction).getFlags?.() ?? [];
  return new Map(flags.map((flag) => [flag.getName(), flag.getValue()]));
}

/** The strings of an exec-form (JSON) CMD or ENTRYPOINT; undefined for the shell form. */
export function execForm(instruction: Instruction): string[] | undefined {
  const strings = (instruction as JSONInstruction).getJSONStrings().map((string) => string.getJSONValue());
  const raw = instruction.getArgumentsContent()?.trim() ?? '';
  return raw.startsWith('[') ? strings : undefined;
}

/** The exec-form command of a HEALTHCHECK (`HEALTHCHECK [flags] CMD [...]`). */
export function healthcheckCommand(instruction: Instruction): string[] | undefined {
  const raw = instruction.getArgumentsContent() ?? '';
  const match = /\bCMD\s+(\[.*\])\s*$/s.exec(raw.replace(/\\\r?\n/g, ' '));
  return match?.[1] ? (JSON.parse(match[1]) as string[]) : undefined;
}

/** Sources and destination of a COPY, and the stage it copies from (undefined: the build context). */
export function copyOf(instruction: Instruction): { from: string | undefined; sources: string[]; destination: string } {
  const from = (instruction as Copy).getFromFlag()?.getValue() ?? undefined;
  const all = words(instruction);
  return { from, sources: all.slice(0, -1), destination: all.at(-1) ?? '' };
}

/**
 * Whether a path of the build context survives a .dockerignore, with Docker's
 * rules (moby/patternmatcher): patterns in order, the last match wins, `!`
 * re-includes, a pattern matching a parent directory matches everything in it,
 * `*` and `?` stay within one path segment, `**` spans any number.
 */
export function dockerignoreFilter(text: string): (contextPath: string) => boolean {
  const patterns = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const exclusion = line.startsWith('!');
      const pattern = (exclusion ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      if (/[[\]\\]/.test(pattern))
        throw new Error(`.dockerignore: character classes and escapes are not supported here`);
      return { exclusion, regex: patternRegex(pattern) };
    });
  return (contextPath) => {
    const segments = contextPath.split('/');
    const candidates = segments.map((_segment, index) => segments.slice(0, index + 1).join('/'));
    let included = true;
    for (const { exclusion, regex } of patterns) {
      if (candidates.some((candidate) => regex.test(candidate))) included = exclusion;
    }
    return included;
  };
}

function patternRegex(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index] as string;
    if (char === '*' && pattern[index + 1] === '*') {
      // `**/` also matches no directory at all
      if (pattern[index + 2] === '/') {
        source += '(?:.*/)?';
        index += 2;
      } else {
        source += '.*';
        index += 1;
      }
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
