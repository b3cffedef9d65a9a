from libc.stdint cimport uint16_t

cdef extern from "pack.h" nogil:
    void pt_pack_weights(void *dst, float *scale, const float *w, int out, int n_in,
                         int dtype)
    uint16_t pt_f32_to_f16(float x)
    uint16_t pt_f32_to_bf16(float x)
