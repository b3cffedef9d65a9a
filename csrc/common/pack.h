/* Load-time packing of a float32 weight matrix into the gemm.h panel layout, converted to the
 * storage dtype on the way (in C, one pass: numpy's transposes and casts would dominate a load).
 *
 * Conversions match numpy / torch bit for bit: fp16 and bf16 round to nearest even (NaN stays
 * NaN, overflow goes to inf); int8 is symmetric per output row, scale = max|row| / 127 (1 for an
 * all-zero row), q = clamp(rint(w / scale), -127, 127). */
#ifndef PT_PACK_H
#define PT_PACK_H
#include <stdint.h>

/* dst: panels [ceil(out/16), in, 16] of `dtype` (gemm.h PT_F32 / PT_F16 / PT_BF16 / PT_I8),
 * zero-padded; w: float32 [out, in]; scale (int8 only, else NULL): [ceil(out/16) * 16],
 * zero-padded. */
void pt_pack_weights(void *dst, float *scale, const float *w, int out, int in, int dtype);

/* One float32 -> IEEE half / bfloat16 bit pattern, round to nearest even. */
uint16_t pt_f32_to_f16(float x);
uint16_t pt_f32_to_bf16(float x);
/* IEEE half bit pattern -> float32 (exact; subnormals, inf and NaN payloads kept). */
float pt_f16_to_f32(uint16_t h);

#endif
