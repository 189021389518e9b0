// head_train.h - fits the value head of visvm-shared search (value.h,
// vv_value_head) on the policy's own frozen hidden states by least-squares TD
// (LSTD): with features phi(s) = [h(s), 1], h the policy's final-norm hidden
// state at a sentence's last token in its context (image, prompt, caption so
// far), it solves sum_i phi_i (phi_i - gamma phi_i')^T w + ridge w = sum_i
// phi_i (r_i - offset), phi' = 0 after the last sentence (done mask). That w
// is the fixed point TD(0) converges to with these features (the value
// model's target r + gamma V(s') without gradient through V(s')), found in
// one pass instead of by stochastic steps, because the backbone is frozen.
#ifndef VT_HEAD_TRAIN_H
#define VT_HEAD_TRAIN_H

#include "td_data.h"

typedef struct vt_head_hp {
    const char *policy_text;   // policy text GGUF
    const char *policy_mmproj; // policy mmproj GGUF
    const char *train_rewards; // rewards JSONL (visvm reward)
    const char *val_rewards;   // held-out rewards JSONL (optional)
    const char *prompt;        // prompt when a line has no "text" (default: "Describe the image in detail.")
    float gamma;               // 0.9
    float reward_offset;       // NAN = mean training reward
    float ridge;               // x the mean squared feature: L2 on the weights (not the bias)
    bool centre;               // fit within-image differences only (each term minus its image's mean)
    const char *val_world;     // world folder of the held-out images: within-image AUCs (optional)
    const char *clip;          // a full CLIP GGUF: fit a value model on its frozen features (value.h,
                               // vv_value_clip_features) instead of a head on the policy
    bool ridge_to_reward;      // CLIP backbone: the ridge pulls toward the reward's own head (w on i*t = 1,
                               // the rest 0: V = cosine) instead of toward zero
    int bilinear_rank;         // CLIP backbone: add rank^2 bilinear terms (value.h; 0 = none, <= 64) on
                               // the top principal directions of the training images' and sentences' features
    int threads;
} vt_head_hp;

vt_head_hp vt_head_default_hp(void);

typedef struct vt_head_metrics {
    int n_train, n_val;               // TD pairs
    double td_loss_train, td_loss_val; // mean squared TD error of the fitted head
    double corr_val;                  // correlation of V(s) with the realised discounted return, held out
    double corr_train;
    // with val_world: within-image AUC (present-only vs absent-naming sentences) of V and of the
    // reward over each held-out image's distinct sentences, and over siblings (same position)
    double auc_v, auc_r, sib_v, sib_r;
    long auc_pairs, sib_pairs;
    double seconds;
} vt_head_metrics;

// The features phi = [h, 1] are the policy's hidden states, or with clip set
// vv_value_clip_features of that CLIP's normalised image and sentence features.
// Fits and writes the head to out_path (atomically). metrics may be NULL.
int vt_head_train(const vt_head_hp *hp, const char *out_path, vt_head_metrics *metrics, vv_error *e);

// The top k eigenvectors (largest eigenvalues first) of a symmetric n x n
// matrix S (row-major, destroyed), as rows of U [k, n]; LAPACK's dsyev. Each
// vector's largest component is made positive so the result does not depend
// on rounding's sign.
int vt_top_eigvecs(double *S, int n, int k, float *U, vv_error *e);

// Solves (A) x = b in place for an n x n row-major system (partial pivoting).
// VISVM_ERR_INVALID if singular.
int vt_solve(double *A, double *b, int n, vv_error *e);

#endif
