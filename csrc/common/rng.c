#include <math.h>
#include "rng.h"

void pt_rng_seed(PtRng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = 624;
}

static void twist(PtRng *r) {
    for (int i = 0; i < 624; i++) {
        uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % 624] & 0x7fffffffu);
        uint32_t v = r->mt[(i + 397) % 624] ^ (y >> 1);
        if (y & 1u) v ^= 0x9908b0dfu;
        r->mt[i] = v;
    }
    r->index = 0;
}

uint32_t pt_rng_u32(PtRng *r) {
    if (r->index >= 624) twist(r);
    uint32_t y = r->mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static float uniform01(PtRng *r) { return (float)(pt_rng_u32(r) & 0xFFFFFFu) * 0x1p-24f; }

static void box_muller16(float *d, float std) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = 2.0f * (float)M_PI * u2;
        d[j] = radius * cosf(theta) * std;
        d[j + 8] = radius * sinf(theta) * std;
    }
}

int pt_rng_normal(PtRng *r, float *out, int n, float std) {
    if (n < 16 || n % 16) return -1;
    for (int i = 0; i < n; i++) out[i] = uniform01(r);
    for (int i = 0; i < n; i += 16) box_muller16(out + i, std);
    return 0;
}

static float uniform_ab(PtRng *r, float a, float b) { return uniform01(r) * (b - a) + a; }

/* torch 2.x nn.init.trunc_normal_ (mean 0): rejection sampling. When the window holds more
 * than 30% of the mass, redraw whole normal vectors and keep the in-range entries; otherwise
 * propose uniforms in [a, b] and accept against the Gaussian density. */
int pt_rng_trunc_normal(PtRng *r, float *out, int n, float std, float clamp) {
    float tmp[256], acc[256];
    int pending[256];
    if (n > 256 || n < 16 || n % 16) return -1;
    double sq2 = sqrt(2.0);
    double p = (1.0 + erf((clamp / (double)std) / sq2)) / 2.0 -
               (1.0 + erf((-clamp / (double)std) / sq2)) / 2.0;
    float lo = -clamp, hi = clamp;
    if (p > 0.3) {
        pt_rng_normal(r, out, n, std);
        for (;;) {
            int any = 0;
            for (int i = 0; i < n; i++) any |= (out[i] < lo) | (out[i] > hi);
            if (!any) break;
            pt_rng_normal(r, tmp, n, std);
            for (int i = 0; i < n; i++)
                if ((out[i] < lo) | (out[i] > hi)) out[i] = tmp[i];
        }
        return 0;
    }
    /* mode = 0 (mean 0 lies inside [-clamp, clamp]), so log_peak = 0. */
    int any = 0;
    for (int i = 0; i < n; i++) out[i] = uniform_ab(r, lo, hi);
    for (int i = 0; i < n; i++) acc[i] = uniform01(r);
    for (int i = 0; i < n; i++) {
        float c = out[i] / std;
        c = c * c * -0.5f;
        pending[i] = logf(acc[i]) > c;
        any |= pending[i];
    }
    while (any) {
        for (int i = 0; i < n; i++) tmp[i] = uniform_ab(r, lo, hi);
        for (int i = 0; i < n; i++)
            if (pending[i]) out[i] = tmp[i];
        for (int i = 0; i < n; i++) acc[i] = uniform01(r);
        any = 0;
        for (int i = 0; i < n; i++) {
            float c = tmp[i] / std;
            c = c * c * -0.5f;
            if (pending[i]) pending[i] = logf(acc[i]) > c;
            any |= pending[i];
        }
    }
    return 0;
}
