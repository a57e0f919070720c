/*
 * hsm_snapshot — live, disk-only snapshots of a running VM (VmSnapshot).
 *
 * The engine (pkctl vm snapshot) has the SPM create, for each drive, a new
 * COW volume whose parent is the drive's current leaf, and prepares it on
 * this host; then this switches all the listed drives onto their new
 * leaves at once: virDomainSnapshotCreateXML with DISK_ONLY | REUSE_EXT |
 * NO_METADATA | ATOMIC (+ QUIESCE on request: the guest agent freezes the
 * file systems; without an answering agent the call fails UNAVAILABLE).
 * Either every drive switches or none does.
 *
 * Checks before libvirt is asked (each a clear error, nothing changed):
 * the VM exists and runs; every drive exists, appears once and holds the
 * named image; each new volume belongs to that image, is a LEGAL COW
 * volume whose parent (metadata) is the drive's current live leaf, and is
 * prepared and reachable here.
 *
 * After the switch our metadata names the new leaves. If that update
 * fails the snapshot still stands (the VM already writes to the new
 * leaves) and the call succeeds: the next read of the VM follows libvirt
 * (hsm/vm.c). An error from this call therefore always means the VM is
 * still on its old leaves.
 */
#ifndef HSM_SNAPSHOT_H
#define HSM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "hsm/hsm.h"
#include "hsm/vm.h"

struct hsm_snapshot_disk {
	const char *drive;  /* "vda" */
	const char *domain;
	const char *image;
	const char *volume; /* the new leaf */
};

/* *ret (may be NULL): the VM after the snapshot. */
int hsm_vm_snapshot(struct hsm *hsm, const char *vm, const struct hsm_snapshot_disk *disks,
		    size_t n, bool quiesce, struct hsm_vm_info *ret, struct pk_error *err);

#endif
