// The data-parallel group a training command runs in: the one `mmoco launch` describes with
// RANK / WORLD_SIZE / MASTER_* (torchrun's variables), Gloo on CPU and NCCL on CUDA, or none.
import * as torch from '../torch/index.js';
import { ConfigError } from './schema.js';

/** Collective timeout of training groups: long enough for rank 0's evaluation and checkpoint. */
const DIST_TIMEOUT_MS = 30 * 60 * 1000;

export interface Ranks {
  group: torch.distributed.ProcessGroup | null;
  rank: number;
  world: number;
  /** rank 0: logs, evaluates and checkpoints */
  lead: boolean;
}

/** Joins the launch's group (if any); the configured batch is global and must split evenly. */
export function joinRanks(cfg: { device: string; batchSize: number }): Ranks {
  const group = torch.distributed.ProcessGroup.fromEnv({
    timeoutMs: DIST_TIMEOUT_MS,
    backend: cfg.device === 'cuda' ? 'nccl' : 'gloo',
  });
  const rank = group?.rank ?? 0;
  const world = group?.worldSize ?? 1;
  if (cfg.batchSize % world !== 0) {
    group?.destroy();
    throw new ConfigError(`batchSize (${cfg.batchSize}) must be divisible by the ${world} processes`);
  }
  return { group, rank, world, lead: rank === 0 };
}
