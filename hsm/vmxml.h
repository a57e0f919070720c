/*
 * hsm_vmxml — the libvirt XML hsmd writes and reads. Pure functions: no
 * libvirt calls, no I/O, no logging; golden-file tested
 * (tests/unit/test_vmxml.c, tests/unit/data/vmxml/). Implemented in
 * hsm/vmxml.c (names, building), hsm/vmxml_check.c (checks of specs and
 * of what is read) and hsm/vmxml_parse.c (parsing, lookups, editing a
 * definition), on top of hsm/xmldoc.h.
 *
 * What it does:
 *  - builds a domain XML from a plain-C VM spec (hsm_vmxml_domain_build);
 *  - parses a domain XML as returned by virDomainGetXMLDesc: per disk the
 *    chain of images leaf -> base with libvirt's backingStore indexes, the
 *    block-job mirror, and our <metadata> (hsm_vmxml_domain_parse);
 *  - builds the <domainsnapshot> XML for an atomic, disk-only snapshot onto
 *    pre-created overlays (hsm_vmxml_snapshot_build);
 *  - builds/parses our metadata element on its own, for
 *    virDomainSetMetadata / virDomainGetMetadata.
 *
 * Decisions written into every domain we build:
 *  - Ownership of images is managed by the storage layer, not by libvirt:
 *    every disk source (and every snapshot overlay) carries
 *    <seclabel model='dac' relabel='no'/>. libvirt applies the top
 *    source's label to the whole detected backing chain, so it never
 *    chowns a volume, never restores ownership when the VM stops (which
 *    would break a volume shared by two chains) and never writes its
 *    "remember owner" xattrs on shared storage. In exchange, whoever
 *    prepares an image MUST make every volume of the chain readable and
 *    writable by the user qemu runs as (Debian: libvirt-qemu, group kvm;
 *    /etc/libvirt/qemu.conf user/group): owner/mode on a device node, or
 *    allow_other + ownership on the lab's FUSE-served files. Kernel and
 *    initrd are ordinary files and are labelled by libvirt as usual.
 *  - Caching: cache='none' (O_DIRECT: coherent across hosts, required for
 *    shared block storage) with io='native' by default. Checked here on a
 *    FUSE-served qcow2: native, threads and io_uring all work with
 *    cache='none' as long as the FUSE server opens its backing files
 *    without O_DIRECT or serves I/O from aligned buffers (qemu fails with
 *    "Could not find working O_DIRECT alignment" otherwise).
 *  - error_policy='stop': a write error (ENOSPC on a thin volume, EIO)
 *    pauses the guest instead of reporting the error inside it, so hsmd
 *    can extend the volume and resume (the read policy follows it).
 *  - discard='unmap' only when the spec asks for it (passing discards to
 *    shared storage is a per-deployment decision).
 *  - The backing chain is never written into the domain XML: libvirt
 *    detects it from the qcow2 headers (each volume names its parent by a
 *    relative file name and a backing format), which keeps `RELATIVE`
 *    commits and rebases possible.
 *  - Our metadata lives in <metadata> in namespace HSM_VMXML_NS (prefix
 *    "pk"): <pk:vm><pk:drive target= domain= image= volume=/>...</pk:vm>,
 *    one <drive> per disk, volume = the drive's current leaf. A domain
 *    without this element is not poolkeeper's.
 *  - No graphics, no network, no USB, no balloon; a virtio-serial channel
 *    for the qemu guest agent (needed by quiesced snapshots); serial
 *    console to a log file when asked; on_crash = destroy.
 *
 * Ownership: every char ** output is a heap string the caller frees with
 * free(); parsed structures are released with their _release function.
 * Outputs (ret_*) are written only on success.
 * Thread-safety: all functions are reentrant (libxml2 is initialised once,
 * on first use, under pthread_once).
 */
#ifndef HSM_VMXML_H
#define HSM_VMXML_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/uuid.h"

#define HSM_VMXML_NS "https://poolkeeper.dev/xmlns/vm/1"
#define HSM_VMXML_NS_PREFIX "pk"

#define HSM_VM_NAME_MAX 64         /* characters, see hsm_vm_name_valid */
#define HSM_VM_MEMORY_MIB_MAX (4u * 1024 * 1024)
#define HSM_VM_VCPUS_MAX 256
#define HSM_VM_DISKS_MAX 64
#define HSM_VMXML_TARGET_MAX 16    /* buffer size of a target name, "vdab" */

enum hsm_vm_type {
	HSM_VM_TYPE_KVM = 1,   /* <domain type='kvm'> */
	HSM_VM_TYPE_QEMU = 2,  /* <domain type='qemu'>: TCG, no /dev/kvm needed */
};

enum hsm_disk_format {
	HSM_DISK_FORMAT_UNKNOWN = 0, /* parse only: a format we do not use */
	HSM_DISK_FORMAT_RAW = 1,
	HSM_DISK_FORMAT_QCOW2 = 2,
};

enum hsm_disk_bus {
	HSM_DISK_BUS_VIRTIO = 0, /* targets vdX */
	HSM_DISK_BUS_SATA = 1,   /* targets sdX, AHCI controller */
	HSM_DISK_BUS_SCSI = 2,   /* targets sdX, virtio-scsi controller */
};

enum hsm_disk_io {
	HSM_DISK_IO_NATIVE = 0,  /* io='native' (Linux AIO), the default */
	HSM_DISK_IO_THREADS = 1,
	HSM_DISK_IO_URING = 2,
};

/* Identity of one drive, as stored in our metadata. */
struct hsm_drive_id {
	char target[HSM_VMXML_TARGET_MAX]; /* "vda" */
	char domain_id[PK_UUID_BUFLEN];
	char image_id[PK_UUID_BUFLEN];
	char volume_id[PK_UUID_BUFLEN];    /* the current leaf */
};

/* One disk of a VM spec. Strings are borrowed for the call. */
struct hsm_vm_disk {
	/* target may be empty: then the next free name for the bus is used
	 * (vda, vdb... for virtio; sda, sdb... for sata and scsi). */
	struct hsm_drive_id id;
	const char *path;             /* absolute host path of the leaf */
	bool block;                   /* path is a block device (type='block') */
	enum hsm_disk_format format;  /* RAW or QCOW2 (of the leaf) */
	enum hsm_disk_bus bus;
};

/* A VM spec. Strings are borrowed for the call; optional ones may be NULL. */
struct hsm_vm_spec {
	const char *name;             /* hsm_vm_name_valid */
	const char *uuid;             /* optional; libvirt picks one when NULL */
	unsigned memory_mib;          /* 1 .. HSM_VM_MEMORY_MIB_MAX */
	unsigned vcpus;               /* 1 .. HSM_VM_VCPUS_MAX */
	enum hsm_vm_type type;
	enum hsm_disk_io io;
	bool discard;                 /* discard='unmap' on every disk */
	const struct hsm_vm_disk *disks;
	size_t ndisks;                /* 0 .. HSM_VM_DISKS_MAX */
	const char *kernel;           /* optional direct kernel boot (absolute) */
	const char *initrd;           /* optional, requires kernel */
	const char *cmdline;          /* optional, requires kernel */
	const char *serial_log;       /* optional: serial console to this file */
};

/* True when name is 1..HSM_VM_NAME_MAX of [A-Za-z0-9_.+-], not starting
 * with '.' or '-'. NULL-safe (false). */
bool hsm_vm_name_valid(const char *name);

/* Writes the index-th target name for a bus ("vda", "vdz", "vdaa"...). */
int hsm_vmxml_target_name(enum hsm_disk_bus bus, size_t index,
			  char out[HSM_VMXML_TARGET_MAX], struct pk_error *err);

/*
 * Builds the domain XML for spec (libvirt's format, indented, no XML
 * declaration). Validates everything first and answers INVALID_ARGUMENT
 * naming the field: names, ids (lowercase UUIDs), absolute paths, no
 * control characters anywhere, unique targets matching their bus. Every
 * string is escaped by the XML writer.
 */
int hsm_vmxml_domain_build(const struct hsm_vm_spec *spec, char **ret_xml,
			   struct pk_error *err);

/* ---- parsing a live (or inactive) domain XML --------------------------- */

/* One image of a disk's chain. */
struct hsm_vmxml_layer {
	char *path;                   /* source file= or dev= (heap) */
	bool block;                   /* type='block' */
	enum hsm_disk_format format;
	int index;                    /* libvirt's index (vda[N]); -1 if absent */
};

/* The state of a block job's <mirror> element. */
enum hsm_vmxml_mirror {
	HSM_VMXML_MIRROR_NONE = 0,     /* no <mirror> */
	HSM_VMXML_MIRROR_SYNCING = 1,  /* <mirror> without ready */
	HSM_VMXML_MIRROR_READY = 2,    /* ready='yes': a pivot may be asked */
	HSM_VMXML_MIRROR_ABORTING = 3, /* ready='abort' */
	HSM_VMXML_MIRROR_PIVOTING = 4, /* ready='pivot' */
	HSM_VMXML_MIRROR_OTHER = 5,    /* a ready value we do not know */
};

/* The job a <mirror> belongs to (job= attribute). Plain commits and pulls
 * have no mirror: ask hsm_virt_block_job_info for those. */
enum hsm_vmxml_mirror_job {
	HSM_VMXML_MIRROR_JOB_NONE = 0,
	HSM_VMXML_MIRROR_JOB_COPY = 1,
	HSM_VMXML_MIRROR_JOB_ACTIVE_COMMIT = 2,
	HSM_VMXML_MIRROR_JOB_OTHER = 3,
};

struct hsm_vmxml_disk {
	char target[HSM_VMXML_TARGET_MAX];
	char bus[16];                 /* as written by libvirt; "" if absent */
	/* layers[0] is the leaf (the active image), layers[nlayers-1] the
	 * deepest image libvirt reports. nlayers is 0 for a disk without a
	 * source (empty cdrom). */
	size_t nlayers;
	struct hsm_vmxml_layer *layers;
	/* true when libvirt knows the whole chain (it ends with an empty
	 * <backingStore/>, as in every live XML); false when the XML says
	 * nothing about backing images (inactive XML). */
	bool chain_complete;
	enum hsm_vmxml_mirror mirror;
	enum hsm_vmxml_mirror_job mirror_job;
	struct hsm_vmxml_layer mirror_dest; /* path NULL when no mirror */
};

struct hsm_vmxml_domain {
	char name[HSM_VM_NAME_MAX + 1];
	char uuid[PK_UUID_BUFLEN];
	char type[16];                /* "kvm", "qemu", ... */
	int id;                       /* libvirt's domain id; -1 when inactive */
	size_t ndisks;                /* device='disk' elements, in XML order */
	struct hsm_vmxml_disk *disks;
	bool has_metadata;            /* our <pk:vm> element is present */
	size_t ndrives;
	struct hsm_drive_id *drives;
};

/*
 * Parses a domain XML. Disks other than device='disk' are skipped. Our
 * metadata is validated (UUIDs, targets); a malformed one is an error
 * (ILLEGAL), because hsmd must not act on a drive identity it cannot
 * trust. On success *ret is filled and owned by the caller
 * (hsm_vmxml_domain_release); on failure *ret is untouched.
 */
int hsm_vmxml_domain_parse(const char *xml, struct hsm_vmxml_domain *ret,
			   struct pk_error *err);

/* Frees what parse allocated and zeroes *dom. NULL-safe. */
void hsm_vmxml_domain_release(struct hsm_vmxml_domain *dom);

/* Lookups in a parsed domain; NULL when absent. */
const struct hsm_vmxml_disk *hsm_vmxml_domain_disk(const struct hsm_vmxml_domain *dom,
						   const char *target);
const struct hsm_drive_id *hsm_vmxml_domain_drive(const struct hsm_vmxml_domain *dom,
						  const char *target);

/* Position (0 = leaf) of the layer whose path is path; -ENOENT if none. */
int hsm_vmxml_disk_find_path(const struct hsm_vmxml_disk *disk, const char *path);

/*
 * Writes libvirt's name for layer pos of the chain, "vda[3]", as block
 * commit/rebase want it. Fails (INVALID_ARGUMENT) when pos is out of
 * range or the layer has no index (an inactive XML).
 */
int hsm_vmxml_disk_layer_ref(const struct hsm_vmxml_disk *disk, size_t pos,
			     char *buf, size_t len, struct pk_error *err);

/* ---- snapshots ------------------------------------------------------------ */

/* One disk to snapshot: the overlay is a qcow2 image created beforehand
 * (by the SPM) whose backing file is the disk's current leaf. */
struct hsm_vmxml_snapshot_disk {
	const char *target;   /* "vda" */
	const char *path;     /* absolute path of the new leaf */
	bool block;           /* path is a block device */
};

/*
 * Builds the <domainsnapshot> XML for virDomainSnapshotCreateXML with
 * DISK_ONLY | REUSE_EXT | NO_METADATA | ATOMIC: each listed disk gets
 * snapshot='external' onto its overlay (driver qcow2, seclabel
 * relabel='no'), every other disk of `live` snapshot='no'. Fails with
 * INVALID_ARGUMENT for an unknown or repeated target, and when n is 0.
 */
int hsm_vmxml_snapshot_build(const struct hsm_vmxml_domain *live,
			     const struct hsm_vmxml_snapshot_disk *disks, size_t n,
			     char **ret_xml, struct pk_error *err);

/* ---- editing a persistent definition ------------------------------------- */

/*
 * Rewrites a domain XML (the persistent definition, as
 * virDomainGetXMLDesc(INACTIVE) returns it) so that disk `target` opens
 * `path` with driver format `format`, and our metadata names `volume_id`
 * as the drive's leaf: the two change in one definition. The disk's
 * <backingStore> elements are dropped (libvirt detects the chain from the
 * image headers at the next start); file= or dev= follows what the source
 * had; everything else is kept as it was. NOT_FOUND when the domain has no
 * such disk or our metadata no such drive.
 */
int hsm_vmxml_disk_source_set(const char *xml, const char *target, const char *path,
			      enum hsm_disk_format format, const char *volume_id,
			      char **ret_xml, struct pk_error *err);

/* ---- metadata element on its own ---------------------------------------- */

/*
 * Builds `<vm><drive .../>...</vm>` without a namespace, the form
 * virDomainSetMetadata(VIR_DOMAIN_METADATA_ELEMENT, key "pk",
 * uri HSM_VMXML_NS) expects (libvirt puts the element and its children
 * into the namespace).
 */
int hsm_vmxml_metadata_build(const struct hsm_drive_id *drives, size_t n,
			     char **ret_xml, struct pk_error *err);

/*
 * Parses our metadata element as virDomainGetMetadata returns it (no
 * namespace) or as written inside a domain (namespace HSM_VMXML_NS).
 * *ret_drives is a heap array (free()) with *ret_n entries (may be 0).
 */
int hsm_vmxml_metadata_parse(const char *xml, struct hsm_drive_id **ret_drives,
			     size_t *ret_n, struct pk_error *err);

const char *hsm_disk_format_name(enum hsm_disk_format format);  /* "qcow2" */
const char *hsm_disk_bus_name(enum hsm_disk_bus bus);           /* "virtio" */
const char *hsm_vmxml_mirror_name(enum hsm_vmxml_mirror mirror); /* "ready" */

#endif
