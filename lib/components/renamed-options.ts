/**
 * Fails on options that were renamed to carry their unit (`memory` → `memoryMiB`), naming the new name: an old name
 * would otherwise be ignored without a word (TypeScript does not see it through a spread or from JavaScript).
 */
export function rejectRenamedOptions(
  where: string,
  args: object,
  renamed: Record<string, { now: string; unit: string }>,
): void {
  for (const [old, { now, unit }] of Object.entries(renamed)) {
    if (old in args) {
      throw new Error(`${where}: option '${old}' is now '${now}' (${unit}); rename it`);
    }
  }
}
