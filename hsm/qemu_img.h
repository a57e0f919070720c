/*
 * hsm_qemu_img — the qemu-img questions hsmd asks about images, answered
 * in bytes or file names: where an image's data ends, how big a fully
 * allocated qcow2 of a capacity is, the numbers of qemu-img's JSON, and
 * the backing chain the qcow2 headers describe.
 *
 * qemu-img always runs with an explicit format (never probing) and with -U
 * (force-share) on images a running qemu holds: it only reads them. The
 * format comes from the volume metadata, never from the file: a guest owns
 * every byte of a RAW volume and can write a qcow2 header there naming any
 * host file as its backing (rule 6 of docs/DESIGN.md). The chain is walked
 * one image at a time with its backing left closed, so qemu-img opens no
 * file the caller did not name.
 * Errors: IO when qemu-img fails (its stderr in the message), INTERNAL
 * when it prints no such number. Thread-safe (one child per call).
 */
#ifndef HSM_QEMU_IMG_H
#define HSM_QEMU_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define HSM_QEMU_IMG_TIMEOUT_MS 120000

/* The unsigned number after "key": in json; -ENOENT when absent. */
int hsm_qemu_img_json_u64(const char *json, const char *key, uint64_t *ret);

/* Where the data of the qcow2 image at path ends (qemu-img check
 * image-end-offset of the file alone, its backing not opened); -ENOENT
 * (err untouched) when qemu-img cannot tell, INVALID_ARGUMENT for a path
 * a json: spec cannot carry. */
int hsm_qemu_img_image_end(const char *path, uint64_t *ret, struct pk_error *err);

/* The size of a fully allocated qcow2 image of capacity bytes: what a COW
 * volume can ever need (qemu-img measure fully-allocated). */
int hsm_qemu_img_measure_full(uint64_t capacity, uint64_t *ret, struct pk_error *err);

/* ---- one image, its backing left closed ---------------------------------- */

/* What `qemu-img info --output=json` says of one image. Heap strings. */
struct hsm_qemu_img_info {
	char *filename;
	char *format;         /* "qcow2", "raw" */
	char *backing;        /* full-backing-filename; NULL: no backing file */
	char *backing_format; /* backing-filename-format; NULL: the header names none */
};

void hsm_qemu_img_info_release(struct hsm_qemu_img_info *info); /* NULL-safe */

/* Parses the JSON object qemu-img info prints for ONE image (keys of its
 * top level only). INTERNAL for malformed JSON or one without a
 * "filename". Pure. */
int hsm_qemu_img_info_parse(const char *json, struct hsm_qemu_img_info *ret,
			    struct pk_error *err);

/* ---- the chain of the headers ------------------------------------------- */

/* A file qemu-img may open, and the format it is opened with. */
struct hsm_qemu_img_file {
	const char *path;
	bool qcow2; /* false: raw */
};

/*
 * The backing chain in the headers, leaf first: `qemu-img info` of each
 * image alone, opened as files[k] says (a json: spec with "backing": null
 * for qcow2, -f raw otherwise), starting at files[0] (the leaf). A header's
 * backing file is followed only when it is the path of an entry of files
 * whose format the header names as its backing format; otherwise the walk
 * stops there and the last name reported is
 *  - the backing file name as the header gives it (not opened), or
 *  - "<path> (format F in the header)" when the formats disagree, or
 *  - "<path> (no format in the header)" (qemu would probe it),
 * none of which is the path of a volume, so a caller comparing chains
 * never takes it for one. A chain that comes back whole is one that qemu
 * and `qemu-img commit -f qcow2` open with the metadata's formats. *ret: a common/strv.h array (pk_strv_free) of at
 * most nfiles + 1 names.
 */
int hsm_qemu_img_chain(const struct hsm_qemu_img_file *files, size_t nfiles, char ***ret,
		       size_t *ret_n, struct pk_error *err);

#endif
