/*
 * svm_internal.h: what svm.c (libsvm, protocol, I/O) and svm_linear.c
 * (liblinear one-vs-one) share: the grader's layout and the linear half's
 * entry points. Not installed; neither solver's header is included here, so
 * each .c file sees only its own library's names.
 */
#ifndef HV_MEASURE_SVM_INTERNAL_H
#define HV_MEASURE_SVM_INTERNAL_H

#include <stdio.h>

#include "hv/measure.h"

#define HV_SVM_NCLS 4
#define HV_SVM_NPAIRS 6

struct svm_model;
struct svm_node;

struct hv_svm_grader {
    double mean[3], scale[3];
    hv_svm_solver solver;
    /* libsvm */
    struct svm_model *model;
    struct svm_node *nodes; /* owned when the model was trained here (SVs point into it) */
    double *y;
    struct svm_node **xp;
    /* liblinear one-vs-one: classes sorted; pair k = (cls[pa[k]], cls[pb[k]]),
     * decision w[k] . x_scaled + b[k] > 0 votes for the first */
    int n_cls, cls[HV_SVM_NCLS], n_pairs, pa[HV_SVM_NPAIRS], pb[HV_SVM_NPAIRS];
    double w[HV_SVM_NPAIRS][3], b[HV_SVM_NPAIRS];
};

/* Train the one-vs-one liblinear grader on rows ord[0..n) (already in the
 * stable grade order; count[c] rows of grade c) with the scaler mean/scale
 * and balanced class weights wt[c] (over all n rows). Fills g's linear part. */
hv_status hv_svm_linear_train(const hv_svm_row *rows, const size_t *ord, size_t n,
                              const long count[HV_SVM_NCLS], const double wt[HV_SVM_NCLS],
                              const double mean[3], const double scale[3], unsigned seed,
                              hv_svm_grader *g);
/* libsvm's vote over the linear functions on a scaled triple; dec (may be
 * NULL) receives the n_pairs decision values. */
int hv_svm_linear_vote(const hv_svm_grader *g, const double xs[3], double *dec);
/* The "hv-svm-linear 1" text (no scaler) to f / from f; load fills g's
 * linear part and sets solver. */
hv_status hv_svm_linear_write(const hv_svm_grader *g, FILE *f, const char *path);
hv_status hv_svm_linear_read(hv_svm_grader *g, FILE *f, const char *path);

#endif /* HV_MEASURE_SVM_INTERNAL_H */
