// `mmoco demo`: the engine demo (a small MLP on Fashion-MNIST) until the pre-training demo lands.
import { runDemo } from '../demo.js';
import { UsageError } from './common.js';

export function demoCommand(argv: readonly string[]): number {
  const i = argv.indexOf('--steps');
  const steps = i >= 0 ? Number(argv[i + 1]) : undefined;
  if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) {
    throw new UsageError(`--steps must be a positive integer, got ${argv[i + 1]}`);
  }
  runDemo({ steps });
  return 0;
}
