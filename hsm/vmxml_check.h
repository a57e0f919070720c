/*
 * hsm/vmxml_check.h — input checks shared by hsm/vmxml*.c only (implemented
 * in hsm/vmxml.c): what the builder validates in a spec, the parser and the
 * definition editor validate in what they read or are asked to write.
 */
#ifndef HSM_VMXML_CHECK_H
#define HSM_VMXML_CHECK_H

#include <stdbool.h>

#include "common/error.h"

/* A target we accept: vd or sd followed by 1-3 lowercase letters. With
 * prefix NULL, vd, sd and hd are all fine. NULL-safe (false). */
bool hsm_vmxml_target_valid(const char *t, const char *prefix);

/* 0 when path is absolute, printable ASCII and shorter than PATH_MAX;
 * otherwise INVALID_ARGUMENT naming `field`. */
int hsm_vmxml_path_check(const char *field, const char *path, struct pk_error *err);

#endif
