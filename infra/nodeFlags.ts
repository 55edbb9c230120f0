/**
 * Flags every Strata process is started with: `npm start`, the image's entrypoint, the runner processes a
 * platform supervises, and the benchmarks' servers (a test checks the first two against this list).
 *
 * `--single-threaded-gc`: V8's parallel scavenger hands each young-generation collection to helper threads,
 * which on a machine whose cores the API, its runners and their sandboxes already keep busy wait to be
 * scheduled. On the 2-core bench machine at c=64, scavenges took 125–165 ms in every 3 s, the longest
 * 21–27 ms; single-threaded, 40–51 ms and 3–9 ms. Strata's heaps are small (tens of MB), where the
 * helpers save little even with cores to spare.
 */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
