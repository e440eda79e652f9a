#!/usr/bin/env node
// The `mmoco` command.
import { runDemo } from './demo.js';

const USAGE = `usage: mmoco <command> [options]

commands:
  demo [--steps N]   train a small MLP with the engine and print its loss falling
  info               libtorch version, threads, BLAS and devices
  help               this text`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'demo': {
      const i = rest.indexOf('--steps');
      const steps = i >= 0 ? Number(rest[i + 1]) : undefined;
      if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) {
        console.error(`mmoco demo: --steps must be a positive integer, got ${rest[i + 1]}`);
        return 2;
      }
      runDemo({ steps });
      return 0;
    }
    case 'info': {
      const torch = await import('../torch/index.js');
      console.log(
        JSON.stringify(
          {
            ...torch.buildInfo(),
            threads: torch.getNumThreads(),
            blas: torch.blasInfo(),
            cuda: torch.cuda.isAvailable() ? torch.cuda.deviceCount() : 0,
          },
          null,
          2,
        ),
      );
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`mmoco: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
