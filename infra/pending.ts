/** Work running in the background that a close waits for: each promise is kept until it settles. */
export interface Pending {
  /** Keeps `work` until it settles, and answers it unchanged: its failure is its caller's to handle. */
  track<T>(work: Promise<T>): Promise<T>;
  /** Resolves once everything tracked so far has settled, fulfilled or not. */
  settled(): Promise<void>;
}

export const createPending = (): Pending => {
  const running = new Set<Promise<void>>();
  return {
    track(work) {
      const done = work.then(
        () => {},
        () => {},
      );
      running.add(done);
      void done.then(() => running.delete(done));
      return work;
    },
    async settled() {
      await Promise.all(running);
    },
  };
};
