/*
 * hsm_qemu_img — the qemu-img questions hsmd asks about qcow2 images and
 * sizes, answered in bytes: where an image's data ends, how big a fully
 * allocated qcow2 of a capacity is, and the numbers of qemu-img's JSON.
 *
 * qemu-img always runs with an explicit format (never probing) and with -U
 * (force-share) on images a running qemu holds: it only reads them.
 * Errors: IO when qemu-img fails (its stderr in the message), INTERNAL
 * when it prints no such number. Thread-safe (one child per call).
 */
#ifndef HSM_QEMU_IMG_H
#define HSM_QEMU_IMG_H

#include <stdint.h>

#include "common/error.h"

#define HSM_QEMU_IMG_TIMEOUT_MS 120000

/* The unsigned number after "key": in json; -ENOENT when absent. */
int hsm_qemu_img_json_u64(const char *json, const char *key, uint64_t *ret);

/* Where the data of the qcow2 image at path ends (qemu-img check
 * image-end-offset); -ENOENT (err untouched) when qemu-img cannot tell. */
int hsm_qemu_img_image_end(const char *path, uint64_t *ret, struct pk_error *err);

/* The size of a fully allocated qcow2 image of capacity bytes: what a COW
 * volume can ever need (qemu-img measure fully-allocated). */
int hsm_qemu_img_measure_full(uint64_t capacity, uint64_t *ret, struct pk_error *err);

#endif
