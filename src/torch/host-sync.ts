// Work a CUDA graph holds must never wait for the device or read host memory: a capture fails at
// the first value read back (item, a copy to the host, ops whose output size depends on values),
// and a copy from host memory would be replayed from a buffer JS has long since reused.
// `forbidHostSync(why, fn)` runs fn with those calls refused by name. CUDAGraph.capture runs
// under it, and so does GraphedTrainStep's eager body, so the CPU tests prove a step capturable
// before any GPU sees it.
let reason: string | null = null;

/** Runs fn with host reads and host-memory copies refused (`why` names the context in errors). */
export function forbidHostSync<T>(why: string, fn: () => T): T {
  const outer = reason;
  reason = why;
  try {
    return fn();
  } finally {
    reason = outer;
  }
}

/** Whether host reads are refused now (inside forbidHostSync). */
export function hostSyncForbidden(): boolean {
  return reason !== null;
}

/** Throws when host reads are refused: `what` says which call and why it would sync. */
export function checkHostSync(what: string): void {
  if (reason !== null) throw new Error(`${what} inside ${reason}: a CUDA graph cannot hold it`);
}
