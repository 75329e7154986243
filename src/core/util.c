/*
 * util.c: small string and filesystem helpers shared by every module.
 */
#include "hv/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *hv_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *hv_strfmt(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = NULL;
    if (n >= 0 && (s = malloc((size_t)n + 1))) vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

hv_status hv_mkdir_p(const char *path)
{
    if (!path || !*path) return hv_error_set(HV_ERR_ARG, "empty directory path");
    char *p = hv_strdup(path);
    if (!p) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    hv_status st = HV_OK;
    size_t len = strlen(p);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            st = hv_error_set(HV_ERR_IO, "cannot create directory '%s': %s", p, strerror(errno));
            goto done;
        }
        p[i] = c;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        st = hv_error_set(HV_ERR_IO, "'%s' exists and is not a directory", path);
done:
    free(p);
    return st;
}
