/*
 * rng.c: seedable random streams (xoshiro256** by Blackman and Vigna, seeded
 * through splitmix64). Every random draw in the project comes from an
 * explicit hv_rng so that results depend only on (seed, stream) and never on
 * thread scheduling or the number of MPI ranks.
 */
#include "hv/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void hv_rng_seed(hv_rng *r, uint64_t seed, uint64_t stream)
{
    /* Mix the stream id in before expanding, so streams do not overlap. */
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull);
    splitmix64(&x);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->have_spare = 0;
    r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hv_rng_u64(hv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double hv_rng_uniform(hv_rng *r) { return (double)(hv_rng_u64(r) >> 11) * 0x1.0p-53; }

double hv_rng_range(hv_rng *r, double lo, double hi) { return lo + (hi - lo) * hv_rng_uniform(r); }

double hv_rng_normal(hv_rng *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    /* Marsaglia polar method: exact, no trigonometry. */
    double u, v, s;
    do {
        u = 2.0 * hv_rng_uniform(r) - 1.0;
        v = 2.0 * hv_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->have_spare = 1;
    return u * f;
}

uint64_t hv_rng_below(hv_rng *r, uint64_t n)
{
    if (n == 0) return 0;
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = hv_rng_u64(r);
    while (x >= limit);
    return x % n;
}
