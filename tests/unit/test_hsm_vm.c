/*
 * hsm/vm.c, hsm/snapshot.c, hsm/chain.c and hsm/rpc.c against the fake
 * libvirtd and LVM: creating, listing and destroying VMs, live snapshots
 * (atomic, metadata following libvirt), live chains compared with
 * metadata, image teardown while a VM runs, libvirt disconnections, and the
 * protobuf verb table.
 */
/* pk-test-fakes: fake_lvm fake_virt */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/locks.h"
#include "common/log.h"
#include "common/version.h"
#include "hsm/chain.h"
#include "hsm/rpc.h"
#include "hsm/snapshot.h"
#include "hsm/vm.h"
#include "proto/codec.h"
#include "common/lvm.h"
#include "common/meta.h"
#include "common/proc.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_virt.h"
#include "tests/lib/hsm_fixture.h"

/* Two prepared images (base <- leaf each) and a running VM "vm1" on them. */
struct two {
	char img[2][PK_UUID_BUFLEN];
	char base[2][PK_UUID_BUFLEN];
	char leaf[2][PK_UUID_BUFLEN];
};

/* A local administrator (ipc): role engine. */
static const struct pk_rpc_peer local_peer = { PK_RPC_PEER_IPC, 0, NULL };

static void prepare(struct fx *fx, const char *image, const char *volume)
{
	struct hsm_chain c = { 0 };
	struct pk_error err;

	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, volume, &c, &err), 0);
	hsm_chain_release(&c);
}

static int create_vm(struct fx *fx, const char *name, const struct two *t, size_t n,
		     struct pk_error *err)
{
	struct hsm_vm_create_disk disks[2];
	struct hsm_vm_create_spec spec = { 0 };
	struct hsm_vm_info info = { 0 };
	int r;

	for (size_t i = 0; i < n; i++) {
		disks[i] = (struct hsm_vm_create_disk){ fx->domain, t->img[i], t->leaf[i], NULL, NULL };
	}
	spec.name = name;
	spec.memory_mib = 64;
	spec.vcpus = 1;
	spec.disks = disks;
	spec.ndisks = n;
	spec.kernel = "vmlinuz";
	spec.cmdline = "console=ttyS0";
	r = hsm_vm_create(&fx->hsm, &spec, &info, err);
	hsm_vm_info_release(&info);
	return r;
}

static void setup_two(struct fx *fx, struct two *t)
{
	struct pk_error err;

	for (int i = 0; i < 2; i++) {
		fx_image(fx, t->img[i], t->base[i], t->leaf[i]);
		prepare(fx, t->img[i], NULL);
	}
	assert_int_equal(create_vm(fx, "vm1", t, 2, &err), 0);
}

static void test_hsm_vm__create_list_destroy(void **state)
{
	struct fx *fx = *state;
	struct two t;
	struct hsm_vm_info *vms = NULL;
	struct pk_error err;
	struct fake_virt_call call;
	size_t n = 0;
	char *xml = NULL;

	setup_two(fx, &t);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_CREATE), 1);
	assert_int_equal(hsm_vm_list(&fx->hsm, NULL, &vms, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(vms[0].name, "vm1");
	assert_int_equal(vms[0].state, HSM_VIRT_STATE_RUNNING);
	assert_int_equal(vms[0].type, HSM_VM_TYPE_QEMU);
	assert_int_equal(vms[0].ndrives, 2);
	assert_string_equal(vms[0].drives[0].id.target, "vda");
	assert_string_equal(vms[0].drives[1].id.target, "vdb");
	assert_string_equal(vms[0].drives[1].id.image_id, t.img[1]);
	assert_string_equal(vms[0].drives[1].id.volume_id, t.leaf[1]);
	assert_int_equal(vms[0].drives[1].nlive, 2);
	assert_string_equal(vms[0].drives[1].live_chain[0], t.leaf[1]);
	assert_string_equal(vms[0].drives[1].live_chain[1], t.base[1]);
	hsm_vm_infos_free(vms, n);

	/* The drive identity is in the domain's metadata. */
	assert_int_equal(hsm_virt_metadata_get(fx->hsm.virt, "vm1", &xml, &err), 0);
	assert_non_null(strstr(xml, t.leaf[0]));
	free(xml);

	/* Foreign domains are neither listed nor destroyed. */
	fake_virt_domain_add_foreign("other");
	assert_int_equal(hsm_vm_list(&fx->hsm, "", &vms, &n, &err), 0);
	assert_int_equal(n, 1);
	hsm_vm_infos_free(vms, n);
	assert_int_equal(hsm_vm_destroy(&fx->hsm, "other", &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_true(fake_virt_domain_exists("other"));

	assert_int_equal(hsm_vm_destroy(&fx->hsm, "vm1", &err), 0);
	assert_false(fake_virt_domain_exists("vm1"));
	assert_int_equal(hsm_vm_destroy(&fx->hsm, "vm1", &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(hsm_vm_list(&fx->hsm, "vm1", &vms, &n, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_false(fake_virt_last_call(FAKE_VIRT_SNAPSHOT, &call));
}

static void test_hsm_vm__create_refuses_bad_input(void **state)
{
	struct fx *fx = *state;
	struct two t, u;
	struct pk_error err;
	char img3[PK_UUID_BUFLEN], base3[PK_UUID_BUFLEN], leaf3[PK_UUID_BUFLEN];

	setup_two(fx, &t);
	/* Duplicate name. */
	assert_int_equal(create_vm(fx, "vm1", &t, 0, &err), -EEXIST);
	assert_int_equal(err.code, PK_E_ALREADY_EXISTS);
	/* Bad name. */
	assert_int_equal(create_vm(fx, "-bad", &t, 0, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	/* Image used by vm1. */
	assert_int_equal(create_vm(fx, "vm2", &t, 1, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_non_null(strstr(err.message, "vm1"));

	/* Not prepared here. */
	fx_image(fx, img3, base3, leaf3);
	memcpy(u.img[0], img3, sizeof(img3));
	memcpy(u.leaf[0], leaf3, sizeof(leaf3));
	assert_int_equal(create_vm(fx, "vm2", &u, 1, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not prepared"));
	prepare(fx, img3, NULL);
	/* Not the leaf. */
	memcpy(u.leaf[0], base3, sizeof(base3));
	assert_int_equal(create_vm(fx, "vm2", &u, 1, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "not the leaf"));
	/* A volume of another image. */
	memcpy(u.leaf[0], t.leaf[1], sizeof(leaf3));
	assert_int_equal(create_vm(fx, "vm2", &u, 1, &err), -EINVAL);
	assert_non_null(strstr(err.message, "belongs to image"));
	/* The same image twice. */
	memcpy(u.leaf[0], leaf3, sizeof(leaf3));
	memcpy(u.img[1], img3, sizeof(img3));
	memcpy(u.leaf[1], leaf3, sizeof(leaf3));
	assert_int_equal(create_vm(fx, "vm2", &u, 2, &err), -EINVAL);
	assert_non_null(strstr(err.message, "same image"));
	/* libvirt refusing to start: nothing left behind. */
	fake_virt_fail_next(FAKE_VIRT_CREATE, PK_E_INTERNAL, "qemu died");
	assert_int_equal(create_vm(fx, "vm2", &u, 1, &err), -EIO);
	assert_false(fake_virt_domain_exists("vm2"));
	assert_int_equal(create_vm(fx, "vm2", &u, 1, &err), 0);
	assert_int_equal(pk_locks_active(fx->hsm.locks), 0);
}

/* Rule 6: kernel/initrd are names in boot_dir, the serial log is derived. */
static int create_with_kernel(struct fx *fx, const char *name, const char *kernel,
			      const char *initrd, struct pk_error *err)
{
	struct hsm_vm_create_spec spec = { 0 };

	spec.name = name;
	spec.memory_mib = 64;
	spec.vcpus = 1;
	spec.kernel = kernel;
	spec.initrd = initrd;
	return hsm_vm_create(&fx->hsm, &spec, NULL, err);
}

static void test_hsm_vm__boot_files_and_serial_log_are_hsmd_paths(void **state)
{
	struct fx *fx = *state;
	struct pk_error err;
	char path[512], want[512];
	char *xml = NULL;

	assert_int_equal(create_with_kernel(fx, "vmk", "/etc/shadow", NULL, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "kernel"));
	assert_int_equal(create_with_kernel(fx, "vmk", "../../etc/shadow", NULL, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(create_with_kernel(fx, "vmk", "vmlinuz", "../run", &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "initrd"));
	snprintf(path, sizeof(path), "%s/out", fx->boot);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(create_with_kernel(fx, "vmk", "out", NULL, &err), -EACCES);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "out of the boot directory"));
	assert_false(fake_virt_domain_exists("vmk"));

	assert_int_equal(create_with_kernel(fx, "vmk", "vmlinuz", NULL, &err), 0);
	xml = fake_virt_created_xml();
	assert_non_null(xml);
	snprintf(want, sizeof(want), "%s/vmlinuz<", fx->boot);
	assert_non_null(strstr(xml, want));
	snprintf(want, sizeof(want), "%s/vmk.serial", fx->logs);
	assert_non_null(strstr(xml, want));
	free(xml);
}

static void test_hsm_vm__teardown_refused_while_used(void **state)
{
	struct fx *fx = *state;
	struct two t;
	struct pk_error err;
	char link[512];

	setup_two(fx, &t);
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, t.img[0], false, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_non_null(strstr(err.message, "vm1"));
	assert_true(fx_exists(fx_link(fx, t.img[0], t.leaf[0], link, sizeof(link))));
	assert_int_equal(hsm_vm_destroy(&fx->hsm, "vm1", &err), 0);
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, t.img[0], false, &err), 0);
	assert_false(fx_exists(fx_link(fx, t.img[0], t.leaf[0], link, sizeof(link))));
	/* force goes past a VM. */
	assert_int_equal(create_vm(fx, "vm3", &(struct two){ 0 }, 0, &err), 0);
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, t.img[1], true, &err), 0);
}

/* New COW leaves on both drives, prepared (what the engine does first). */
static void new_leaves(struct fx *fx, const struct two *t, char snap[2][PK_UUID_BUFLEN])
{
	for (int i = 0; i < 2; i++) {
		fx_volume(fx, t->img[i], t->leaf[i], snap[i]);
		prepare(fx, t->img[i], snap[i]);
	}
}

static void test_hsm_vm__snapshot_switches_all_drives(void **state)
{
	struct fx *fx = *state;
	struct two t;
	char snap[2][PK_UUID_BUFLEN];
	struct hsm_snapshot_disk disks[2];
	struct hsm_vm_info info = { 0 };
	struct hsm_chain_report rep = { 0 };
	struct fake_virt_call call;
	struct pk_error err;
	char *chain, *xml = NULL;

	setup_two(fx, &t);
	new_leaves(fx, &t, snap);
	for (int i = 0; i < 2; i++) {
		disks[i] = (struct hsm_snapshot_disk){ i ? "vdb" : "vda", fx->domain, t.img[i],
						       snap[i] };
	}
	/* Before: metadata already names the new leaf, libvirt does not. */
	assert_int_equal(hsm_volume_chain(&fx->hsm, fx->domain, t.img[0], NULL, NULL, &rep, &err),
			 0);
	assert_false(rep.consistent);
	assert_string_equal(rep.live_source, "libvirt");
	hsm_chain_report_release(&rep);

	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", disks, 2, false, &info, &err), 0);
	assert_true(fake_virt_last_call(FAKE_VIRT_SNAPSHOT, &call));
	assert_false(call.quiesce);
	for (int i = 0; i < 2; i++) {
		const struct hsm_drive_info *d = &info.drives[i];
		assert_string_equal(d->id.volume_id, snap[i]);
		assert_int_equal(d->nlive, 3);
		assert_string_equal(d->live_chain[0], snap[i]);
		assert_string_equal(d->live_chain[1], t.leaf[i]);
		assert_string_equal(d->live_chain[2], t.base[i]);
	}
	hsm_vm_info_release(&info);
	chain = fake_virt_chain("vm1", "vdb");
	assert_non_null(strstr(chain, snap[1]));
	free(chain);
	assert_int_equal(hsm_virt_metadata_get(fx->hsm.virt, "vm1", &xml, &err), 0);
	assert_non_null(strstr(xml, snap[0]));
	assert_non_null(strstr(xml, snap[1]));
	free(xml);

	/* Metadata and live chains agree, through the VM or through the image. */
	fx_volume_update(fx, t.leaf[0], PK_VOLUME_INTERNAL, 0);
	assert_int_equal(hsm_volume_chain(&fx->hsm, "", "", "vm1", "vda", &rep, &err), 0);
	assert_true(rep.consistent);
	assert_int_equal(rep.nmetadata, 3);
	assert_string_equal(rep.domain, fx->domain);
	hsm_chain_report_release(&rep);
	assert_int_equal(hsm_volume_chain(&fx->hsm, fx->domain, t.img[1], NULL, NULL, &rep, &err),
			 0);
	assert_true(rep.consistent);
	assert_string_equal(rep.live[0], snap[1]);
	hsm_chain_report_release(&rep);

	/* The old leaf cannot be dropped while the VM runs above it. */
	{
		struct hsm_chain c = { 0 };
		assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, t.img[0], t.base[0], &c,
						   &err),
				 -EBUSY);
		assert_int_equal(err.code, PK_E_IN_USE);
	}
}

static void test_hsm_vm__snapshot_failure_changes_nothing(void **state)
{
	struct fx *fx = *state;
	struct two t;
	char snap[2][PK_UUID_BUFLEN];
	struct hsm_snapshot_disk disks[2];
	struct hsm_vm_info info = { 0 };
	struct pk_error err;
	char *chain;

	setup_two(fx, &t);
	new_leaves(fx, &t, snap);
	for (int i = 0; i < 2; i++) {
		disks[i] = (struct hsm_snapshot_disk){ i ? "vdb" : "vda", fx->domain, t.img[i],
						       snap[i] };
	}
	fake_virt_fail_next(FAKE_VIRT_SNAPSHOT, PK_E_INTERNAL, "could not open overlay");
	assert_true(hsm_vm_snapshot(&fx->hsm, "vm1", disks, 2, false, &info, &err) < 0);
	assert_non_null(strstr(err.message, "old leaves"));
	assert_non_null(strstr(err.message, "could not open overlay"));
	chain = fake_virt_chain("vm1", "vda");
	assert_null(strstr(chain, snap[0]));
	free(chain);
	assert_int_equal(hsm_vm_get(&fx->hsm, "vm1", &info, &err), 0);
	assert_string_equal(info.drives[0].id.volume_id, t.leaf[0]);
	assert_string_equal(info.drives[1].id.volume_id, t.leaf[1]);
	hsm_vm_info_release(&info);

	/* Quiesce without a guest agent: UNAVAILABLE, nothing switched. */
	assert_true(hsm_vm_snapshot(&fx->hsm, "vm1", disks, 2, true, &info, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	fake_virt_set_guest_agent("vm1", true);
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", disks, 1, true, &info, &err), 0);
	assert_string_equal(info.drives[0].id.volume_id, snap[0]);
	assert_string_equal(info.drives[1].id.volume_id, t.leaf[1]);
	hsm_vm_info_release(&info);
	assert_int_equal(pk_locks_active(fx->hsm.locks), 0);
}

static void test_hsm_vm__snapshot_refuses_bad_input(void **state)
{
	struct fx *fx = *state;
	struct two t;
	char snap[2][PK_UUID_BUFLEN], orphan[PK_UUID_BUFLEN], unprepared[PK_UUID_BUFLEN];
	struct hsm_snapshot_disk d;
	struct hsm_vm_info info = { 0 };
	struct pk_error err;

	setup_two(fx, &t);
	new_leaves(fx, &t, snap);
	d = (struct hsm_snapshot_disk){ "vda", fx->domain, t.img[0], snap[0] };

	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "nosuchvm", &d, 1, false, &info, &err),
			 -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 0, false, &info, &err), -EINVAL);
	d.drive = "vdz";
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "no drive 'vdz'"));
	/* Another image's volume / the wrong image for the drive. */
	d = (struct hsm_snapshot_disk){ "vda", fx->domain, t.img[0], snap[1] };
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), -EINVAL);
	assert_non_null(strstr(err.message, "belongs to image"));
	d = (struct hsm_snapshot_disk){ "vda", fx->domain, t.img[1], snap[1] };
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), -EINVAL);
	assert_non_null(strstr(err.message, "holds image"));
	/* A volume not on top of the current leaf. */
	fx_volume(fx, t.img[0], t.base[0], orphan);
	d = (struct hsm_snapshot_disk){ "vda", fx->domain, t.img[0], orphan };
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), -EINVAL);
	assert_non_null(strstr(err.message, "current leaf"));
	/* Not prepared here. */
	fx_volume(fx, t.img[1], t.leaf[1], unprepared);
	d = (struct hsm_snapshot_disk){ "vdb", fx->domain, t.img[1], unprepared };
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not prepared"));
	/* The same drive twice. */
	{
		struct hsm_snapshot_disk two[2] = { { "vda", fx->domain, t.img[0], snap[0] },
						    { "vda", fx->domain, t.img[0], snap[1] } };
		assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", two, 2, false, &info, &err),
				 -EINVAL);
		assert_non_null(strstr(err.message, "twice"));
	}
	/* A VM that does not run. */
	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_SHUTOFF), 0);
	d = (struct hsm_snapshot_disk){ "vda", fx->domain, t.img[0], snap[0] };
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_SNAPSHOT), 0);
}

static void test_hsm_vm__metadata_follows_libvirt(void **state)
{
	struct fx *fx = *state;
	struct two t;
	char snap[2][PK_UUID_BUFLEN];
	struct hsm_snapshot_disk d;
	struct hsm_vm_info info = { 0 };
	struct pk_error err;
	char *xml = NULL;

	setup_two(fx, &t);
	new_leaves(fx, &t, snap);
	d = (struct hsm_snapshot_disk){ "vdb", fx->domain, t.img[1], snap[1] };
	/* The snapshot happens, the metadata update does not: still success. */
	fake_virt_fail_next(FAKE_VIRT_METADATA_SET, PK_E_INTERNAL, "lost");
	assert_int_equal(hsm_vm_snapshot(&fx->hsm, "vm1", &d, 1, false, &info, &err), 0);
	/* The read-back already followed libvirt and fixed the metadata. */
	assert_string_equal(info.drives[1].id.volume_id, snap[1]);
	hsm_vm_info_release(&info);
	assert_int_equal(hsm_virt_metadata_get(fx->hsm.virt, "vm1", &xml, &err), 0);
	assert_non_null(strstr(xml, snap[1]));
	free(xml);
}

static void test_hsm_vm__libvirt_disconnected(void **state)
{
	struct fx *fx = *state;
	struct two t;
	struct hsm_vm_info *vms = NULL;
	struct pk_error err;
	size_t n = 0;

	setup_two(fx, &t);
	fake_virt_disconnect();
	assert_int_equal(hsm_vm_list(&fx->hsm, NULL, &vms, &n, &err), -ENOTCONN);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, t.img[0], false, &err),
			 -ENOTCONN);
	fake_virt_reconnect();
	fake_virt_events_flush();
	assert_int_equal(atomic_load(&fx->hsm.reconnects), 1);
	assert_int_equal(hsm_vm_list(&fx->hsm, NULL, &vms, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vms[0].drives[0].nlive, 2);
	hsm_vm_infos_free(vms, n);
}

/* ---- the verb table ------------------------------------------------------------------ */

static Pk__Response *call(struct fx *fx, Pk__Request *req)
{
	struct pk_dispatcher d = { hsm_verbs, hsm_nverbs, &fx->hsm, 1 << 20, &fx->hsm.info, PK_AUTH_INIT };
	size_t len, rlen = 0;
	uint8_t *buf;
	void *reply = NULL;
	Pk__Response *resp;

	req->api_version = PK_API_VERSION;
	req->id = 7;
	len = pk__request__get_packed_size(req);
	buf = pk_xmalloc(len + 1);
	pk__request__pack(req, buf);
	assert_int_equal(pk_dispatch_handle(&d, &local_peer, buf, len, &reply, &rlen), 0);
	resp = pk__response__unpack(NULL, rlen, reply);
	assert_non_null(resp);
	free(buf);
	free(reply);
	return resp;
}

static void test_hsm_vm__rpc_verbs(void **state)
{
	struct fx *fx = *state;
	struct two t;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PrepareImageRequest pi = PK__PREPARE_IMAGE_REQUEST__INIT;
	Pk__VmListRequest vl = PK__VM_LIST_REQUEST__INIT;
	Pk__VmCreateRequest vc = PK__VM_CREATE_REQUEST__INIT;
	Pk__GetVolumeChainRequest gc = PK__GET_VOLUME_CHAIN_REQUEST__INIT;
	Pk__Response *resp;

	setup_two(fx, &t);
	fx_image(fx, image, base, leaf);
	pi.domain_id = fx->domain;
	pi.image_id = image;
	pi.volume_id = (char *)"";
	req.call_case = PK__REQUEST__CALL_PREPARE_IMAGE;
	req.prepare_image = &pi;
	resp = call(fx, &req);
	if (resp->error) {
		fail_msg("%s", resp->error->message);
	}
	assert_int_equal(resp->prepare_image->n_volumes, 2);
	assert_string_equal(resp->prepare_image->volumes[0]->volume_id, leaf);
	assert_string_equal(resp->prepare_image->volumes[0]->parent_id, base);
	assert_string_equal(resp->prepare_image->volumes[1]->parent_id, "");
	assert_int_equal(resp->prepare_image->volumes[0]->format, PK__VOLUME_FORMAT__FORMAT_COW);
	assert_non_null(strstr(resp->prepare_image->volumes[0]->path, "/storage/"));
	pk__response__free_unpacked(resp, NULL);

	vl.name = (char *)"";
	req.call_case = PK__REQUEST__CALL_VM_LIST;
	req.vm_list = &vl;
	resp = call(fx, &req);
	assert_int_equal(resp->vm_list->n_vms, 1);
	assert_string_equal(resp->vm_list->vms[0]->state, "running");
	assert_int_equal(resp->vm_list->vms[0]->type, PK__DOMAIN_TYPE__DOMAIN_TYPE_QEMU);
	assert_int_equal(resp->vm_list->vms[0]->drives[0]->n_live_chain, 2);
	pk__response__free_unpacked(resp, NULL);

	gc.domain_id = (char *)"";
	gc.image_id = (char *)"";
	gc.vm = (char *)"vm1";
	gc.drive = (char *)"vdb";
	req.call_case = PK__REQUEST__CALL_GET_VOLUME_CHAIN;
	req.get_volume_chain = &gc;
	resp = call(fx, &req);
	assert_null(resp->error);
	assert_true(resp->get_volume_chain->consistent);
	assert_string_equal(resp->get_volume_chain->live_source, "libvirt");
	assert_int_equal(resp->get_volume_chain->n_metadata_chain, 2);
	pk__response__free_unpacked(resp, NULL);

	/* Errors keep their code. */
	req.call_case = PK__REQUEST__CALL_VM_CREATE;
	req.vm_create = &vc;
	resp = call(fx, &req);
	assert_non_null(resp->error);
	assert_int_equal(resp->error->code, PK__ERROR_CODE__INVALID_ARGUMENT);
	pk__response__free_unpacked(resp, NULL);
	vl.name = (char *)"ghost";
	req.call_case = PK__REQUEST__CALL_VM_LIST;
	req.vm_list = &vl;
	resp = call(fx, &req);
	assert_int_equal(resp->error->code, PK__ERROR_CODE__NOT_FOUND);
	pk__response__free_unpacked(resp, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hsm_vm__create_list_destroy, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__create_refuses_bad_input, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__boot_files_and_serial_log_are_hsmd_paths,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__teardown_refused_while_used, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__snapshot_switches_all_drives, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__snapshot_failure_changes_nothing,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__snapshot_refuses_bad_input, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__metadata_follows_libvirt, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__libvirt_disconnected, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_vm__rpc_verbs, fx_setup, fx_teardown),
	};

	pk_log_setup("test_hsm_vm", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
