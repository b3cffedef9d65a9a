/* Small-M GEMM against weights packed once at load time, in fp32, fp16, bf16 or int8.
 *
 * Every per-frame product in this engine multiplies a few activation rows (1 for the flow-LM
 * step, 16 for a Mimi frame, a text chunk for a prefill) by fixed weights. sgemm repacks the
 * weights on every call, which costs as much as the product at this size. Here the weights are
 * packed once into panels of 16 output columns, panel[p][k][16] (the last panel zero-padded),
 * and an AVX2 6x16 register-tile kernel streams them, widening fp16 (F16C), bf16 or int8 to
 * fp32 in registers; int8 carries one scale per output column, applied after the sum.
 * On AVX-512 CPUs a panel row is one zmm register and tiles take 12 rows: the same FMA chain
 * per output, so the same bits as the AVX2 kernels (tested), about 1.6x faster on 2 cores.
 * With one row this is a GEMV reading each weight once (memory-bound: compact dtypes move
 * fewer bytes); with more rows each panel stays in cache across row tiles.
 *
 * Each output row of a multi-row call is accumulated over k in the same order whatever M is, so
 * a row's result does not depend on how many rows share the call (frame-by-frame == batch, bit
 * for bit). A one-row call (the GEMV) uses its own order, split over even / odd k to hide the
 * FMA latency; pt_gemm_set_gemv_order makes a thread's multi-row calls use it for every row,
 * so n streams stepped together give each stream what its one-row calls would. The portable
 * path has a single order for everything. */
#ifndef PT_GEMM_H
#define PT_GEMM_H
#include <stddef.h>
#include <stdint.h>

#define PT_PANEL 16

enum { PT_F32 = 0, PT_F16 = 1, PT_BF16 = 2, PT_I8 = 3 };

/* A packed weight matrix: y = x . W^T with W [out, in] (torch Linear layout). */
typedef struct {
    const void *data;     /* panels [ceil(out/16), in, 16] of the element type */
    const float *scale;   /* int8 only: [ceil(out/16) * 16] per output column, else NULL */
    int dtype;
    int out, in;
} PtMatrix;

/* Elements of a packed [out, in] matrix (panels included). */
size_t pt_packed_size(int out, int in);
/* Pack float32 w[out, in] (y = x . w^T) into panels. */
void pt_pack_nt(float *dst, const float *w, int out, int in);

/* y[M, out] (row stride ldy) = x[M, in] (row stride ldx) . W^T (+ bias[out]);
 * accumulate: y += instead of y =. */
void pt_gemm(float *y, int ldy, const float *x, int ldx, const PtMatrix *w, int M,
             const float *bias, int accumulate);

/* Let the calling thread split large products (M * out * in >= 2^21) over n <= 2 threads, or,
 * with n = PT_GEMM_SHARED, offer every product to a helper thread (pt_gemm_help_until). */
void pt_gemm_set_threads(int n);
#define PT_GEMM_SHARED (-1)

/* on != 0: this thread's products compute every row in the one-row (GEMV) order, helpers and
 * split threads included (the flow-LM step of several streams). Returns the previous setting. */
int pt_gemm_set_gemv_order(int on);

/* Help with the shared products other threads post until *progress >= target (spinning: call
 * it only on a core that would otherwise idle). Bit-identical to the poster working alone. */
void pt_gemm_help_until(const int *progress, int target);
/* *progress = value, with release ordering (what pt_gemm_help_until waits on). */
void pt_progress_store(int *progress, int value);
/* The calling thread's split (1 or 2; 1 in shared mode); pt_attention splits a prefill's heads
 * the same way. */
int pt_gemm_threads(void);

/* Float32 convenience: W given as float panels from pt_pack_nt. */
void pt_gemm_packed(float *y, int ldy, const float *x, int ldx, const float *packed, int M,
                    int out, int in, const float *bias, int accumulate);

#endif
