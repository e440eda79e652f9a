// What every config-driven command shares: parse the flags of its schema, print `--help`
// (every key with its default, and the command's presets), resolve the config.
import { parseArgs } from '../args.js';
import { helpLines } from '../../train/schema.js';
import { SCHEMAS, listPresets, resolveConfig, type ConfigCommand } from '../../train/config.js';
import type { Infer } from '../../train/schema.js';

/** Thrown for bad usage: the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function commandHelp(command: ConfigCommand, usage: string, about: string): string {
  const presets = listPresets().filter((p) => p.command === command);
  const lines = [
    `usage: ${usage}`,
    '',
    about,
    '',
    'options (each is also a config key: --set key=value, or a key in a --config preset):',
    '  --config <preset|file.json>             a preset from configs/ or a JSON file',
    '  --set key=value                         override one key (repeatable)',
    ...helpLines(SCHEMAS[command]),
  ];
  if (presets.length) {
    lines.push('', 'presets:');
    const w = Math.max(...presets.map((p) => p.name.length)) + 4;
    for (const p of presets) lines.push(`  ${p.name.padEnd(w)}${p.description}`);
  }
  return lines.join('\n');
}

export interface Resolved<C extends ConfigCommand> {
  help: boolean;
  config: Infer<(typeof SCHEMAS)[C]>;
  preset: string | null;
  positional: string[];
}

export function resolveCommand<C extends ConfigCommand>(
  command: C,
  argv: readonly string[],
  o: { positional?: number } = {},
): Resolved<C> {
  const a = parseArgs(argv, SCHEMAS[command], o);
  if (a.help) return { help: true, config: null as never, preset: null, positional: a.positional };
  const config = resolveConfig(command, { preset: a.preset, flags: a.flags, sets: a.sets });
  return { help: false, config, preset: a.preset, positional: a.positional };
}

/** `runs/<preset name or command>` when `out` is not set. */
export function defaultOut(out: string | null, preset: string | null, command: string): string {
  if (out) return out;
  const base = preset ? preset.replace(/^.*\//, '').replace(/\.json$/, '') : command;
  return `runs/${base}`;
}
