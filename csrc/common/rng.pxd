from libc.stdint cimport uint32_t, uint64_t

cdef extern from "rng.h" nogil:
    ctypedef struct PtRng:
        uint32_t mt[624]
        int index
    void pt_rng_seed(PtRng *r, uint64_t seed)
    uint32_t pt_rng_u32(PtRng *r)
    int pt_rng_normal(PtRng *r, float *out, int n, float std)
    int pt_rng_trunc_normal(PtRng *r, float *out, int n, float std, float clamp)
