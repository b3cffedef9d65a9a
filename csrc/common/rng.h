/* Seedable noise for the flow head: MT19937 seeded like torch.manual_seed, normals made like
 * torch's CPU normal_fill (24-bit uniforms, Box-Muller in blocks of 16), so a seed here gives
 * the reference's noise to within ~1 ulp. */
#ifndef PT_RNG_H
#define PT_RNG_H
#include <stdint.h>

typedef struct {
    uint32_t mt[624];
    int index;
} PtRng;

void pt_rng_seed(PtRng *r, uint64_t seed);
uint32_t pt_rng_u32(PtRng *r);
/* out[n] ~ N(0, std^2); n must be a multiple of 16 (torch's vectorised path). Returns -1 if not. */
int pt_rng_normal(PtRng *r, float *out, int n, float std);
/* out[n] ~ N(0, std^2) truncated to [-clamp, clamp], drawn as torch 2.x
 * nn.init.trunc_normal_ does (rejection sampling). n: multiple of 16, <= 256; -1 otherwise. */
int pt_rng_trunc_normal(PtRng *r, float *out, int n, float std, float clamp);

#endif
