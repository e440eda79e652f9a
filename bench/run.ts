// `npm run bench -- <name> [options]`: runs one benchmark. Each prints JSON lines on stdout
// (progress on stderr). Modules are imported on demand: `threads` must not load libtorch in
// this process (its children each load it with their own thread environment).
const BENCHES: Record<string, { about: string; run: (args: string[]) => Promise<void> | void }> = {
  engine: {
    about: 'per-op overhead, matmul GFLOP/s and an MLP training step, against Python PyTorch',
    run: async (args) => (await import('./engine.js')).runEngine(args),
  },
  data: {
    about: 'images/s of loading + decoding + batching (CIFAR-10, Imagenette) against torchvision',
    run: async (args) => (await import('./data.js')).runData(args),
  },
  step: {
    about: 'images/s of one M-MoCo pre-training step (trainStep) against the same step in PyTorch',
    run: async (args) => (await import('./step.js')).runStep(args),
  },
  dist: {
    about: 'images/s of data-parallel pre-training with 1 and 2 processes (Gloo) against PyTorch DDP',
    run: async (args) => (await import('./dist.js')).runDist(args),
  },
  threads: {
    about: 'thread/BLAS study: ViT-Tiny block step and 2048³ matmul at 1 and 2 threads (--help for options)',
    run: async (args) => (await import('./threads.js')).runThreads(args),
  },
};

function usage(): string {
  return (
    'usage: npm run bench -- <name> [options]\n' +
    Object.entries(BENCHES)
      .map(([name, b]) => `  ${name.padEnd(8)} ${b.about}`)
      .join('\n')
  );
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (name === undefined || name === '--help' || name === '-h') {
    console.error(usage());
    process.exitCode = name === undefined ? 2 : 0;
    return;
  }
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`bench: unknown benchmark '${name}'; known: ${Object.keys(BENCHES).join(', ')}\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  await bench.run(args);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
