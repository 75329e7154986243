/*
 * model_meta.c: open a classifier model file the way its users do
 * (hv_model_cam_open, as the attention stage and `healthivert attention`)
 * and print /meta values, for the shell tests of `healthivert
 * train-classifier` (tests/train/test_cls_stop.sh).
 *
 *   hv_model_meta FILE KEY...
 *
 * Prints "width=W" (read from the weights by the opener), then one line per
 * KEY: "KEY=value", or "KEY absent" when /meta has no such key. The opener's
 * warnings go to stderr. Exit 0 when the file opened, 1 when the opener
 * refused it (its message on stderr), 2 on a bad command line.
 */
#include <stdio.h>

#include "hv/model.h"
#include "hv/nn.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hv_model_meta FILE [KEY]...\n");
        return 2;
    }
    hv_nn_backend *be = NULL;
    hv_model_cam *c = NULL;
    hv_status st = hv_nn_backend_create_ref(&be);
    if (st == HV_OK) st = hv_model_cam_open(argv[1], 1, be, &c);
    if (st != HV_OK) {
        fprintf(stderr, "hv_model_meta: %s: %s\n", argv[1], hv_error_detail());
        hv_nn_backend_free(be);
        return 1;
    }
    printf("width=%d\n", hv_model_cam_width(c));
    for (int i = 2; i < argc; i++) {
        char v[1024];
        if (hv_nn_checkpoint_meta(argv[1], argv[i], v, sizeof v) == HV_OK)
            printf("%s=%s\n", argv[i], v);
        else
            printf("%s absent\n", argv[i]);
    }
    hv_model_cam_free(c);
    hv_nn_backend_free(be);
    return 0;
}
