/* random.c - lucid's counter-based random number generator, one per thread.
 *
 * State is just (seed, counter), kept per OS thread: lc_manual_seed seeds the calling thread's
 * generator, so host threads (each with its own lua_State, say) draw reproducible streams
 * without seeing each other's draws. A new thread starts at PyTorch's default seed. Workers of
 * the thread pool never draw: the op reserves its counters on the calling thread first. Every random op reserves a block of counters with
 * lc_rng_reserve() and element i of its output is a pure function of (seed, base + i), so the
 * values never depend on how the work is split across threads. The bit generator is a double
 * splitmix64-style mix of (seed, counter): the counter is spread by the golden-ratio increment
 * and keyed by a hash of the seed, mixed, keyed again by a second seed hash and mixed again
 * (each mix is the "moremur" variant of the murmur3 64-bit finalizer). */
#include "core.h"

#include <math.h>

#define DEFAULT_SEED UINT64_C(67280421310721) /* PyTorch's default */
#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static _Thread_local uint64_t rng_seed = DEFAULT_SEED;
static _Thread_local uint64_t rng_counter;

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 27)) * UINT64_C(0x3C79AC492BA7B653);
  z = (z ^ (z >> 33)) * UINT64_C(0x1C69B3F74AC4AE35);
  return z ^ (z >> 27);
}

static inline uint64_t splitmix_finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

void lc_manual_seed(uint64_t seed) {
  rng_seed = seed;
  rng_counter = 0;
}

uint64_t lc_initial_seed(void) { return rng_seed; }

uint64_t lc_rng_reserve(uint64_t n, uint64_t *seed) {
  uint64_t base = rng_counter;
  rng_counter += n;
  if (seed) *seed = rng_seed;
  return base;
}

uint64_t lc_rng_bits(uint64_t seed, uint64_t counter) {
  /* The seed keys are cheap to recompute and keep the function pure (no cached state). */
  uint64_t k1 = splitmix_finalize(seed + GOLDEN);
  uint64_t k2 = splitmix_finalize(seed + 2 * GOLDEN);
  uint64_t z = mix64((counter + 1) * GOLDEN ^ k1);
  return mix64(z ^ k2);
}

double lc_rng_uniform(uint64_t seed, uint64_t counter) {
  return (double)(lc_rng_bits(seed, counter) >> 11) * 0x1.0p-53;
}

double lc_rng_normal(uint64_t seed, uint64_t counter) {
  /* Box-Muller from two uniforms derived from this counter alone: u1 in (0, 1] so log is finite,
   * u2 from the mirror counter (top bit flipped; reservations never reach 2^63). The sine half
   * of the pair is what create.c's fills use for odd elements (see normal_pair there). */
  uint64_t a = lc_rng_bits(seed, counter);
  uint64_t b = lc_rng_bits(seed, counter ^ (UINT64_C(1) << 63));
  double u1 = (double)((a >> 11) + 1) * 0x1.0p-53;
  double u2 = (double)(b >> 11) * 0x1.0p-53;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
