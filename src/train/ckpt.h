// ckpt.h - training checkpoints as GGUF files.
//
// Contents: every parameter as an F32 tensor under its own name (GGUF ne =
// reversed row-major shape, so the tensors are directly usable by GGUF
// readers), the AdamW moments of trainable parameters as "<name>.adam_m" and
// "<name>.adam_v", and the keys
//   visvm.ckpt.version (u32, 1), visvm.ckpt.step (u64, ps->step),
//   visvm.ckpt.rng (u64[4], xoshiro state, when given),
//   visvm.ckpt.meta (string, caller's JSON/kv blob, when given),
// plus whatever the caller's write_kv hook adds (e.g. model hyper-parameters).
// Written through the GGUF writer: temp file + fsync + rename, so a crash
// never leaves a torn checkpoint and never destroys the previous one.
//
// Loading validates everything before touching the parameter set (on error
// it is unchanged): tensor present, type F32, same shape; moments and step
// present unless VT_CKPT_WEIGHTS_ONLY; no unknown tensors unless
// VT_CKPT_ALLOW_EXTRA. Resuming from a checkpoint continues bit-identically.
#ifndef VT_CKPT_H
#define VT_CKPT_H

#include "../format/gguf.h"
#include "optim.h"

enum vt_ckpt_flags {
    VT_CKPT_WEIGHTS_ONLY = 1u,  // load values only: moments zeroed, step = 0, rng/meta not required
    VT_CKPT_ALLOW_MISSING = 2u, // parameters absent from the file keep their current values (and moments)
    VT_CKPT_ALLOW_EXTRA = 4u    // ignore tensors of the file that match no parameter
};

// Optional extras for save and load (all members may be NULL / zero).
typedef struct vt_ckpt_io {
    vv_rng *rng;          // save: state stored; load: restored (error if the file has none)
    const char *meta;     // save: stored as visvm.ckpt.meta
    char **meta_out;      // load: malloc'd copy of visvm.ckpt.meta (NULL if absent); free()
    // save: add keys (return VISVM_OK or an error status)
    int (*write_kv)(vv_gguf_writer *w, void *ud);
    // load: read keys once validation passed (before the parameter set is changed)
    int (*read_kv)(const vv_gguf *g, void *ud, vv_error *e);
    void *ud;
} vt_ckpt_io;

int vt_ckpt_save(const char *path, const vt_params *ps, const vt_ckpt_io *io, vv_error *e);
int vt_ckpt_load(const char *path, vt_params *ps, unsigned flags, const vt_ckpt_io *io, vv_error *e);

// Initialises parameters from a model GGUF (as exported, any dequantizable
// type): every parameter with a tensor of the same name is copied after a
// shape check; others are left as they are. done (optional, [ps->n]) marks the
// loaded parameters across calls; *n_loaded is incremented once per newly
// loaded parameter.
int vt_params_load_gguf(vt_params *ps, const char *path, bool *done, int *n_loaded, vv_error *e);
// The same for the parameters whose name starts with prefix only ("v.": a tower).
int vt_params_load_gguf_prefix(vt_params *ps, const char *path, const char *prefix, int *n_loaded, vv_error *e);

#endif
