// Environment that OpenMP (libgomp) reads once, when libtorch is loaded. It must be set
// before the addon is required, so this module has no imports from the rest of the library.
//
// OMP_WAIT_POLICY=PASSIVE: idle OpenMP workers sleep instead of spinning. On small machines
// torch's OpenMP pool and OpenBLAS's threads otherwise spin against each other between
// parallel regions (measured in bench/threads: see README "Threads").

export function applyThreadEnvDefaults(): void {
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
}
