/** Wall-time budgets: one signal per answer, and a way to stop waiting on work that ignores it. */

/** The answer's signal: the wall-time timer, joined with the caller's own signal when there is one. */
export function answerSignal(maxWallMs: number, caller: AbortSignal | undefined): { timer: AbortSignal; signal: AbortSignal } {
  // Node turns delays past 2^31-1 ms into 1 ms: clamp, do not overflow.
  const timer = AbortSignal.timeout(Math.min(maxWallMs, 2 ** 31 - 1));
  return { timer, signal: caller ? AbortSignal.any([timer, caller]) : timer };
}

/** Resolves like `work`, or rejects with the signal's reason as soon as it aborts. */
export async function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
