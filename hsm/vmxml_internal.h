/*
 * hsm/vmxml_internal.h — the inside of hsm/vmxml.h. Included by
 * hsm/vmxml_check.c (which implements it), hsm/vmxml.c (the builders) and
 * hsm/vmxml_parse.c (the parser and the definition editor); by no other
 * file. These are the input checks: what the builder validates in a spec,
 * the parser and the editor in what they read or are asked to write.
 */
#ifndef HSM_VMXML_INTERNAL_H
#define HSM_VMXML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "hsm/vmxml.h"

/* A target we accept: vd or sd followed by 1-3 lowercase letters. With
 * prefix NULL, vd, sd and hd are all fine. NULL-safe (false). */
bool hsm_vmxml_target_valid(const char *t, const char *prefix);

/* 0 when path is absolute, printable ASCII and shorter than PATH_MAX;
 * otherwise INVALID_ARGUMENT naming `field`. */
int hsm_vmxml_path_check(const char *field, const char *path, struct pk_error *err);

/* 0 when the ids of disk i of a spec are UUIDs; else INVALID_ARGUMENT
 * naming disks[i].<field>. */
int hsm_vmxml_drive_id_check(size_t i, const struct hsm_drive_id *id, struct pk_error *err);

/* 0 when spec (name, uuid, sizes, type, io, kernel, initrd, cmdline,
 * serial_log) may be built; else INVALID_ARGUMENT naming the field. The
 * disks are checked as their targets are resolved (hsm/vmxml.c). */
int hsm_vmxml_spec_check(const struct hsm_vm_spec *spec, struct pk_error *err);

#endif
