#include <math.h>
#include <string.h>
#include "elementwise.h"
#include "seanet.h"

/* ---------------------------------------------------------------------------------------------
 * Residual block
 * ------------------------------------------------------------------------------------------- */

void pt_seanet_resblock(const PtResBlock *r, PtConv1dState *s1, PtConv1dState *s2, float *x,
                        int T, float *xp, float *h, float *col) {
    const int dim = r->conv1.c_in, hid = r->conv1.c_out;
    const int P1 = pt_conv1d_history(&r->conv1), P2 = pt_conv1d_history(&r->conv2);
    float *hin = h + (size_t)P2 * hid;
    pt_elu(xp + (size_t)P1 * dim, x, (size_t)T * dim);
    pt_conv1d_forward(&r->conv1, s1, xp, T, hin, col, 0);
    pt_elu(hin, hin, (size_t)T * hid);
    pt_conv1d_forward(&r->conv2, s2, h, T, x, col, 1); /* x += conv2(...) */
}

/* ---------------------------------------------------------------------------------------------
 * Memory plans
 * ------------------------------------------------------------------------------------------- */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }
static void upd(size_t *m, size_t v) {
    if (v > *m) *m = v;
}

/* Sizes (floats) of the four work buffers: a = current activation, b = conv input with history
 * rows, h = residual hidden with history rows, col = im2col. */
typedef struct {
    size_t a, b, h, col;
} Plan;

static void plan_conv(Plan *p, const PtConv1d *c, int T) {
    upd(&p->b, (size_t)(pt_conv1d_history(c) + T) * c->c_in);
    upd(&p->col, pt_conv1d_col_size(c, T));
}

static void plan_res(Plan *p, const PtResBlock *r, int T) {
    plan_conv(p, &r->conv1, T);
    upd(&p->h, (size_t)(pt_conv1d_history(&r->conv2) + T) * r->conv2.c_in);
    upd(&p->col, pt_conv1d_col_size(&r->conv2, T));
    upd(&p->a, (size_t)T * r->conv1.c_in);
}

static Plan encoder_plan(const PtSEANetEncoder *e, int T) {
    Plan p = {0, 0, 0, 0};
    plan_conv(&p, &e->first, T);
    upd(&p.a, (size_t)T * e->first.c_out);
    for (int i = 0; i < e->n_stages; i++) {
        for (int j = 0; j < e->n_res; j++) plan_res(&p, &e->res[i][j], T);
        plan_conv(&p, &e->down[i], T);
        T /= e->down[i].stride;
        upd(&p.a, (size_t)T * e->down[i].c_out);
    }
    plan_conv(&p, &e->last, T);
    return p;
}

static Plan decoder_plan(const PtSEANetDecoder *d, int T) {
    Plan p = {0, 0, 0, 0};
    plan_conv(&p, &d->first, T);
    upd(&p.a, (size_t)T * d->first.c_out);
    for (int i = 0; i < d->n_stages; i++) {
        const PtConvTr1d *u = &d->up[i];
        upd(&p.b, (size_t)(pt_convtr1d_history(u) + T) * u->c_in);
        T *= u->stride;
        upd(&p.a, (size_t)T * u->c_out);
        for (int j = 0; j < d->n_res; j++) plan_res(&p, &d->res[i][j], T);
    }
    plan_conv(&p, &d->last, T);
    return p;
}

static size_t plan_total(const Plan *p) {
    return round16(p->a) + round16(p->b) + round16(p->h) + round16(p->col);
}

static void plan_split(const Plan *p, float *scratch, float **a, float **b, float **h,
                       float **col) {
    *a = scratch;
    *b = *a + round16(p->a);
    *h = *b + round16(p->b);
    *col = *h + round16(p->h);
}

size_t pt_seanet_encoder_scratch_size(const PtSEANetEncoder *e, int T) {
    Plan p = encoder_plan(e, T);
    return plan_total(&p);
}

size_t pt_seanet_decoder_scratch_size(const PtSEANetDecoder *d, int T) {
    Plan p = decoder_plan(d, T);
    return plan_total(&p);
}

/* ---------------------------------------------------------------------------------------------
 * State layout: each history buffer gets its own 16-float-aligned slice of one block.
 * With s == NULL only the size is computed.
 * ------------------------------------------------------------------------------------------- */

static float *take(float *mem, size_t *off, size_t n) {
    float *p = mem ? mem + *off : NULL;
    *off += round16(n);
    return p;
}

static void bind_conv(PtConv1dState *st, const PtConv1d *c, float *mem, size_t *off) {
    float *p = take(mem, off, (size_t)pt_conv1d_history(c) * c->c_in);
    if (st) st->hist = p;
}

static size_t encoder_layout(const PtSEANetEncoder *e, PtSEANetState *s, float *mem) {
    size_t off = 0;
    PtSEANetState dummy;
    PtSEANetState *t = s ? s : &dummy;
    bind_conv(&t->first, &e->first, mem, &off);
    for (int i = 0; i < e->n_stages; i++) {
        for (int j = 0; j < e->n_res; j++) {
            bind_conv(&t->res1[i][j], &e->res[i][j].conv1, mem, &off);
            bind_conv(&t->res2[i][j], &e->res[i][j].conv2, mem, &off);
        }
        bind_conv(&t->down[i], &e->down[i], mem, &off);
    }
    bind_conv(&t->last, &e->last, mem, &off);
    return off;
}

static size_t decoder_layout(const PtSEANetDecoder *d, PtSEANetState *s, float *mem) {
    size_t off = 0;
    PtSEANetState dummy;
    PtSEANetState *t = s ? s : &dummy;
    bind_conv(&t->first, &d->first, mem, &off);
    for (int i = 0; i < d->n_stages; i++) {
        t->up[i] = take(mem, &off, (size_t)pt_convtr1d_history(&d->up[i]) * d->up[i].c_in);
        for (int j = 0; j < d->n_res; j++) {
            bind_conv(&t->res1[i][j], &d->res[i][j].conv1, mem, &off);
            bind_conv(&t->res2[i][j], &d->res[i][j].conv2, mem, &off);
        }
    }
    bind_conv(&t->last, &d->last, mem, &off);
    return off;
}

size_t pt_seanet_encoder_state_size(const PtSEANetEncoder *e) {
    return encoder_layout(e, NULL, NULL);
}

size_t pt_seanet_decoder_state_size(const PtSEANetDecoder *d) {
    return decoder_layout(d, NULL, NULL);
}

void pt_seanet_encoder_reset(const PtSEANetEncoder *e, PtSEANetState *s) {
    pt_conv1d_reset(&e->first, &s->first);
    for (int i = 0; i < e->n_stages; i++) {
        for (int j = 0; j < e->n_res; j++) {
            pt_conv1d_reset(&e->res[i][j].conv1, &s->res1[i][j]);
            pt_conv1d_reset(&e->res[i][j].conv2, &s->res2[i][j]);
        }
        pt_conv1d_reset(&e->down[i], &s->down[i]);
    }
    pt_conv1d_reset(&e->last, &s->last);
}

void pt_seanet_decoder_reset(const PtSEANetDecoder *d, PtSEANetState *s) {
    pt_conv1d_reset(&d->first, &s->first);
    for (int i = 0; i < d->n_stages; i++) {
        size_t n = (size_t)pt_convtr1d_history(&d->up[i]) * d->up[i].c_in;
        if (n) memset(s->up[i], 0, n * sizeof(float));
        for (int j = 0; j < d->n_res; j++) {
            pt_conv1d_reset(&d->res[i][j].conv1, &s->res1[i][j]);
            pt_conv1d_reset(&d->res[i][j].conv2, &s->res2[i][j]);
        }
    }
    pt_conv1d_reset(&d->last, &s->last);
}

void pt_seanet_encoder_state_bind(const PtSEANetEncoder *e, PtSEANetState *s, float *mem) {
    memset(s, 0, sizeof(*s));
    encoder_layout(e, s, mem);
    pt_seanet_encoder_reset(e, s);
}

void pt_seanet_decoder_state_bind(const PtSEANetDecoder *d, PtSEANetState *s, float *mem) {
    memset(s, 0, sizeof(*s));
    decoder_layout(d, s, mem);
    pt_seanet_decoder_reset(d, s);
}

/* ---------------------------------------------------------------------------------------------
 * Forward passes
 * ------------------------------------------------------------------------------------------- */

void pt_seanet_encoder_forward(const PtSEANetEncoder *e, PtSEANetState *s, const float *x,
                               int T, float *y, float *scratch) {
    Plan p = encoder_plan(e, T);
    float *a, *b, *h, *col;
    plan_split(&p, scratch, &a, &b, &h, &col);
    int C = e->first.c_in;
    memcpy(b + (size_t)pt_conv1d_history(&e->first) * C, x, (size_t)T * C * sizeof(float));
    pt_conv1d_forward(&e->first, &s->first, b, T, a, col, 0);
    C = e->first.c_out;
    for (int i = 0; i < e->n_stages; i++) {
        for (int j = 0; j < e->n_res; j++)
            pt_seanet_resblock(&e->res[i][j], &s->res1[i][j], &s->res2[i][j], a, T, b, h, col);
        const PtConv1d *dn = &e->down[i];
        pt_elu(b + (size_t)pt_conv1d_history(dn) * C, a, (size_t)T * C);
        pt_conv1d_forward(dn, &s->down[i], b, T, a, col, 0);
        T /= dn->stride;
        C = dn->c_out;
    }
    pt_elu(b + (size_t)pt_conv1d_history(&e->last) * C, a, (size_t)T * C);
    pt_conv1d_forward(&e->last, &s->last, b, T, y, col, 0);
}

void pt_seanet_decoder_forward(const PtSEANetDecoder *d, PtSEANetState *s, const float *x,
                               int T, float *y, float *scratch) {
    Plan p = decoder_plan(d, T);
    float *a, *b, *h, *col;
    plan_split(&p, scratch, &a, &b, &h, &col);
    int C = d->first.c_in;
    memcpy(b + (size_t)pt_conv1d_history(&d->first) * C, x, (size_t)T * C * sizeof(float));
    pt_conv1d_forward(&d->first, &s->first, b, T, a, col, 0);
    C = d->first.c_out;
    for (int i = 0; i < d->n_stages; i++) {
        const PtConvTr1d *u = &d->up[i];
        pt_elu(b + (size_t)pt_convtr1d_history(u) * C, a, (size_t)T * C);
        pt_convtr1d_forward(u, s->up[i], b, T, a);
        T *= u->stride;
        C = u->c_out;
        for (int j = 0; j < d->n_res; j++)
            pt_seanet_resblock(&d->res[i][j], &s->res1[i][j], &s->res2[i][j], a, T, b, h, col);
    }
    pt_elu(b + (size_t)pt_conv1d_history(&d->last) * C, a, (size_t)T * C);
    pt_conv1d_forward(&d->last, &s->last, b, T, y, col, 0);
}
