/**
 * Aborted on SIGINT or SIGTERM: a benchmark passes it to every step it times, so Ctrl-C stops the step's processes
 * (a kernel build's make, a boot's QEMU) and the benchmark's own clean-up still runs.
 */
export const interrupted: AbortSignal = (() => {
  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the step being timed`);
      controller.abort();
    });
  }
  return controller.signal;
})();
