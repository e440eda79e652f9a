// Command-line parsing for the config-driven commands: `--config <preset>`, `--set key=value`
// (repeatable), and one flag per schema key in kebab case (`--num-chunks 8`, `--num-chunks=8`,
// `--class-attention` / `--no-class-attention` for booleans). Unknown flags are errors with a
// "did you mean" hint.
import { ConfigError, camel, coerce, kebab, unknownKeyError, type Schema } from '../train/schema.js';

export interface ParsedArgs {
  help: boolean;
  preset: string | null;
  sets: string[];
  /** values by config key, already validated */
  flags: Record<string, unknown>;
  /** arguments that are not flags */
  positional: string[];
}

export function parseArgs(argv: readonly string[], schema: Schema, o: { positional?: number } = {}): ParsedArgs {
  const r: ParsedArgs = { help: false, preset: null, sets: [], flags: {}, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      r.help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      r.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new ConfigError(`--${name} needs a value`);
      i++;
      return v;
    };
    if (name === 'config') {
      r.preset = value();
      continue;
    }
    if (name === 'set') {
      r.sets.push(value());
      continue;
    }
    let key = camel(name);
    let negate = false;
    if (!schema[key] && name.startsWith('no-') && schema[camel(name.slice(3))]?.type === 'bool') {
      key = camel(name.slice(3));
      negate = true;
    }
    const f = schema[key];
    if (!f) {
      const e = unknownKeyError(key, schema, 'command line');
      throw new ConfigError(e.message.replace(/'([A-Za-z0-9]+)'/g, (_, k: string) => `--${kebab(k)}`));
    }
    if (f.type === 'bool' && inline === undefined) {
      r.flags[key] = !negate;
      continue;
    }
    r.flags[key] = coerce(key, f, value(), `--${name}`, true);
  }
  if (o.positional !== undefined && r.positional.length > o.positional) {
    throw new ConfigError(`unexpected argument '${r.positional[o.positional]}'`);
  }
  return r;
}
