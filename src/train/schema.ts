// A small typed schema for run configurations: each key has a type, a default, a one-line doc
// and its allowed values, so that one table gives the validated config object (with its
// TypeScript type inferred), the command line flags (the keys in kebab case) and `--help`.
// Errors name the key, the value and what is allowed.

export type FieldSpec =
  | { type: 'int'; default: number | null; doc: string; min?: number; max?: number; nullable?: boolean }
  | {
      type: 'number';
      default: number | null;
      doc: string;
      min?: number;
      max?: number;
      nullable?: boolean;
      positive?: boolean;
    }
  | { type: 'bool'; default: boolean; doc: string }
  | { type: 'string'; default: string | null; doc: string; nullable?: boolean }
  | { type: 'enum'; values: readonly string[]; default: string; doc: string }
  | { type: 'numbers'; length: number; default: readonly number[]; doc: string };

export type Schema = Readonly<Record<string, FieldSpec>>;

type ValueOf<F extends FieldSpec> = F extends { type: 'int' | 'number' }
  ? number | (F extends { nullable: true } ? null : never)
  : F extends { type: 'bool' }
    ? boolean
    : F extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : F extends { type: 'numbers' }
        ? number[]
        : string | (F extends { nullable: true } ? null : never);

/** The config object a schema describes. */
export type Infer<S extends Schema> = { -readonly [K in keyof S]: ValueOf<S[K]> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** camelCase → kebab-case (`numChunks` → `num-chunks`, `stopGradConv1` → `stop-grad-conv1`). */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** kebab-case → camelCase. */
export function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

export function unknownKeyError(key: string, schema: Schema, where: string): ConfigError {
  const keys = Object.keys(schema);
  const near = keys.filter((k) => distance(k.toLowerCase(), key.toLowerCase()) <= 2);
  const hint = near.length ? ` (did you mean ${near.map((k) => `'${k}'`).join(' or ')}?)` : '';
  return new ConfigError(`${where}: unknown key '${key}'${hint}; allowed keys: ${keys.join(', ')}`);
}

function describeAllowed(f: FieldSpec): string {
  switch (f.type) {
    case 'int':
    case 'number': {
      const kind = f.type === 'int' ? 'an integer' : 'a number';
      const lo = f.type === 'number' && f.positive ? ' > 0' : f.min !== undefined ? ` ≥ ${f.min}` : '';
      const hi = f.max !== undefined ? ` ≤ ${f.max}` : '';
      const range = lo && hi ? `${lo} and${hi}` : lo + hi;
      return `${kind}${range}${f.nullable ? ' (or null)' : ''}`;
    }
    case 'bool':
      return 'true or false';
    case 'string':
      return `a string${f.nullable ? ' (or null)' : ''}`;
    case 'enum':
      return f.values.map((v) => `'${v}'`).join(', ');
    case 'numbers':
      return `${f.length} numbers (e.g. ${f.default.join(',')})`;
  }
}

/**
 * Checks and converts one value (from JSON, or a string from the command line when `fromText`).
 * Throws a ConfigError naming `where`, the key, the value and what is allowed.
 */
export function coerce(key: string, f: FieldSpec, value: unknown, where: string, fromText = false): unknown {
  const bad = (): ConfigError =>
    new ConfigError(`${where}: invalid value ${JSON.stringify(value)} for '${key}': expected ${describeAllowed(f)}`);
  if (value === null || (fromText && value === 'null')) {
    if ((f.type === 'int' || f.type === 'number' || f.type === 'string') && f.nullable) return null;
    throw bad();
  }
  switch (f.type) {
    case 'int':
    case 'number': {
      const v = fromText && typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad();
      if (f.type === 'int' && !Number.isInteger(v)) throw bad();
      if (f.type === 'number' && f.positive && !(v > 0)) throw bad();
      if (f.min !== undefined && v < f.min) throw bad();
      if (f.max !== undefined && v > f.max) throw bad();
      return v;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (fromText && (value === 'true' || value === '1' || value === 'yes')) return true;
      if (fromText && (value === 'false' || value === '0' || value === 'no')) return false;
      throw bad();
    }
    case 'string':
      if (typeof value !== 'string' || value === '') throw bad();
      return value;
    case 'enum':
      if (typeof value !== 'string' || !f.values.includes(value)) throw bad();
      return value;
    case 'numbers': {
      let v = value;
      if (fromText && typeof value === 'string') v = value.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
      if (!Array.isArray(v) || v.length !== f.length || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
        throw bad();
      return [...(v as number[])];
    }
  }
}

/** The schema's defaults. */
export function defaults<S extends Schema>(schema: S): Infer<S> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(schema)) out[k] = Array.isArray(f.default) ? [...f.default] : f.default;
  return out as Infer<S>;
}

/**
 * Overlays `layer` (a JSON object, e.g. a preset) on `base`, validating each key. Unknown keys
 * are errors naming them and the allowed keys.
 */
export function overlay<S extends Schema>(
  schema: S,
  base: Infer<S>,
  layer: Record<string, unknown>,
  where: string,
): Infer<S> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(layer)) {
    const f = schema[k];
    if (!f) throw unknownKeyError(k, schema, where);
    out[k] = coerce(k, f, v, where);
  }
  return out as Infer<S>;
}

/** Applies `key=value` texts (`--set`): keys in camelCase or kebab-case. */
export function applySets<S extends Schema>(schema: S, base: Infer<S>, sets: readonly string[]): Infer<S> {
  const out: Record<string, unknown> = { ...base };
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set: expected key=value, got '${s}'`);
    const key = camel(s.slice(0, eq).trim());
    const f = schema[key];
    if (!f) throw unknownKeyError(key, schema, '--set');
    out[key] = coerce(key, f, s.slice(eq + 1).trim(), '--set', true);
  }
  return out as Infer<S>;
}

/** `--help` lines: one per key, `--kebab-key <allowed>  doc (default: x)`. */
export function helpLines(schema: Schema): string[] {
  const rows = Object.entries(schema).map(([k, f]) => {
    const arg =
      f.type === 'bool'
        ? ''
        : f.type === 'enum'
          ? ` ${f.values.join('|')}`
          : f.type === 'numbers'
            ? ' a,b'
            : f.type === 'string'
              ? ' <text>'
              : f.type === 'int'
                ? ' <int>'
                : ' <num>';
    const def = Array.isArray(f.default) ? f.default.join(',') : String(f.default);
    return [`  --${kebab(k)}${arg}`, `${f.doc} (default: ${def})`] as const;
  });
  const width = Math.min(40, Math.max(...rows.map(([a]) => a.length)) + 2);
  return rows.map(([a, d]) => (a.length >= width ? `${a}\n${' '.repeat(width)}${d}` : a.padEnd(width) + d));
}
