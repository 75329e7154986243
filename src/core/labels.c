/*
 * labels.c: VerSe vertebra label names (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6,
 * 28 T13). One table, so every report names levels the same way.
 */
#include "hv/core.h"

#include <ctype.h>
#include <string.h>

static const char *const hv_label_names[29] = {
    NULL,  "C1",  "C2",  "C3",  "C4",  "C5",  "C6",  "C7",  "T1",  "T2",
    "T3",  "T4",  "T5",  "T6",  "T7",  "T8",  "T9",  "T10", "T11", "T12",
    "L1",  "L2",  "L3",  "L4",  "L5",  "L6",  NULL,  NULL,  "T13",
};

const char *hv_label_name(int label)
{
    if (label < 0 || label > 28) return NULL;
    return hv_label_names[label];
}

int hv_label_from_name(const char *name)
{
    if (!name) return 0;
    for (int l = 1; l <= 28; l++) {
        const char *n = hv_label_names[l];
        if (!n) continue;
        size_t i = 0;
        while (n[i] && name[i] && toupper((unsigned char)name[i]) == n[i]) i++;
        if (!n[i] && !name[i]) return l;
    }
    return 0;
}

double hv_label_order(int label)
{
    if (label >= 1 && label <= 25) return (double)label;
    if (label == 28) return 19.5; /* T13 between T12 and L1 */
    return -1.0;
}
