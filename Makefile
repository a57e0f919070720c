# poolkeeper — plain Makefile.
#
#   make                 build hsmd, spmd, pkctl, pk-lvmapd and their libraries
#   make deps            install every Debian package needed (scripts/deps.txt)
#   make check           unit + integration tests (+ a short fuzz run)
#   make SANITIZE=1 check  the same under ASan+UBSan
#   make SANITIZE=thread check-unit  the unit tests under TSan
#   make fuzz            every fuzz target for 60 s (FUZZ_SECONDS; docs/FUZZ.md)
#   make demo            the lab demo
#   make bench           benchmarks (see docs/BENCHMARKS.md)
#   make install         PREFIX=/usr/local DESTDIR=
#
# Layout of the build: every .c in a source folder goes into that folder's
# static library, except main.c, which becomes the folder's program. Unit
# tests (tests/unit/test_*.c) and tools (tests/tools/*.c) link the test
# support library (tests/lib/*.c) before the others; unit tests also link
# the fakes they name on a line `pk-test-fakes: a b` (fake a is
# tests/fakes/a.c plus any tests/fakes/a_*.c, so no other fake may be named
# a_...); a fake's symbols win over the real adapter in the library because
# the linker only pulls archive members for symbols still undefined.

PREFIX ?= /usr/local
DESTDIR ?=
SANITIZE ?= 0
CC ?= cc

ifeq ($(SANITIZE),1)
BUILD ?= build-san
else ifeq ($(SANITIZE),thread)
BUILD ?= build-tsan
else
BUILD ?= build
endif

PKG_LIBS := libprotobuf-c libvirt libxml-2.0 fuse3 inih libsanlock
PKG_CFLAGS := $(shell pkg-config --cflags $(PKG_LIBS) 2>/dev/null)
pkg_ldlibs = $(shell pkg-config --libs $(1) 2>/dev/null)
PKG_LDLIBS := $(call pkg_ldlibs,$(PKG_LIBS))

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
	-Wstrict-prototypes -Wvla -fno-common
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
CSTD := -std=c17 -D_GNU_SOURCE
OPT := -O2 -g
ifeq ($(SANITIZE),1)
OPT := -O1 -g -fno-omit-frame-pointer
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
HARDEN := -fstack-protector-strong
endif
ifeq ($(SANITIZE),thread)
OPT := -O1 -g -fno-omit-frame-pointer
SAN := -fsanitize=thread
HARDEN := -fstack-protector-strong
endif

INCLUDES := -I. -I$(BUILD)/gen
CFLAGS_ALL := $(CSTD) $(OPT) $(WARN) $(HARDEN) $(SAN) $(INCLUDES) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN) -Wl,-z,relro,-z,now $(LDFLAGS)
# Each program links only the libraries it uses, so that pkctl, say, runs on a
# host without libvirt, sanlock, LVM or FUSE (gcc links --as-needed only
# without sanitizers, so the lists must be right in themselves). Ids come
# from getrandom(2) (common/uuid.c), so no program needs libuuid. Tests,
# tools and benchmarks link everything.
# mbedTLS: common/tls_engine.c, the TLS engine under nng (it reports peers' names).
MBEDTLS_LDLIBS := -lmbedtls -lmbedx509 -lmbedcrypto
HSMD_LDLIBS := $(call pkg_ldlibs,libprotobuf-c libvirt libxml-2.0 inih) -lnng $(MBEDTLS_LDLIBS) -llvm2cmd \
	-lpthread $(LDLIBS)
SPMD_LDLIBS := $(call pkg_ldlibs,libprotobuf-c libsanlock inih) -lnng $(MBEDTLS_LDLIBS) -llvm2cmd \
	-lpthread $(LDLIBS)
PKCTL_LDLIBS := $(call pkg_ldlibs,libprotobuf-c) -lnng $(MBEDTLS_LDLIBS) -lpthread $(LDLIBS)
LVMAPD_LDLIBS := $(call pkg_ldlibs,fuse3) $(LDLIBS)
LDLIBS_ALL := $(PKG_LDLIBS) -lnng $(MBEDTLS_LDLIBS) -llvm2cmd -lpthread $(LDLIBS)

# ---- sources -------------------------------------------------------------
PROTOS := $(wildcard proto/*.proto)
GEN_C := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)

lib_srcs = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))
objs = $(patsubst %.c,$(BUILD)/%.o,$(1))

PROTO_OBJS := $(GEN_C:.c=.o) $(call objs,$(call lib_srcs,proto))
COMMON_OBJS := $(call objs,$(call lib_srcs,common))
SPM_OBJS := $(call objs,$(call lib_srcs,spm))
HSM_OBJS := $(call objs,$(call lib_srcs,hsm))
CTL_OBJS := $(call objs,$(call lib_srcs,ctl))
LVMAPD_OBJS := $(call objs,$(call lib_srcs,lvmapd))
# lab/: its *-shim.c are LD_PRELOAD libraries, its other .c the lab's library
# (the writing guest's log format, for the guest and the tools that check it).
SHIM_SRCS := $(wildcard lab/*-shim.c)
LAB_OBJS := $(call objs,$(filter-out $(SHIM_SRCS),$(call lib_srcs,lab)))

LIBPROTO := $(BUILD)/libpkproto.a
LIBCOMMON := $(BUILD)/libpkcommon.a
LIBSPM := $(BUILD)/libpkspm.a
LIBHSM := $(BUILD)/libpkhsm.a
LIBCTL := $(BUILD)/libpkctl.a
LIBLVMAPD := $(BUILD)/libpklvmapd.a
LIBLAB := $(BUILD)/libpklab.a
# Support code of the tests (fixtures, shared steps): every tests/lib/*.c. The
# archive is empty while there are none.
LIBTEST := $(BUILD)/libpktest.a
TESTLIB_OBJS := $(call objs,$(wildcard tests/lib/*.c))

BINS := $(BUILD)/hsmd $(BUILD)/spmd $(BUILD)/pkctl $(BUILD)/pk-lvmapd
SHIMS := $(patsubst lab/%.c,$(BUILD)/libpk-%.so,$(SHIM_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
FAKE_OBJS := $(call objs,$(wildcard tests/fakes/*.c))
# Helper programs for integration tests and benchmarks: one .c each.
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))

.PHONY: all check-includes tools fuzz-build deps check check-unit check-integration fuzz fuzz-short demo bench \
	bench-rpc bench-spm bench-merge bench-thin bench-spm-failover bench-scale install clean lab-down
.DEFAULT_GOAL := all
# Keep intermediate objects (test objects are otherwise deleted after linking).
.SECONDARY:

all: $(BINS) $(SHIMS) check-includes

# Protobuf stays at the edge (proto/, hsm/rpc*.c, spm/rpc*.c, ctl/, tests,
# benchmarks): the build fails naming any other file that includes the
# generated schema.
check-includes:
	@scripts/check-includes

deps:
	scripts/deps

# ---- protobuf --------------------------------------------------------------
$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c -I. --c_out=$(BUILD)/gen $<

$(BUILD)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c | $(GEN_H)
	$(CC) $(CSTD) $(OPT) $(SAN) $(INCLUDES) $(PKG_CFLAGS) -w -c -o $@ $<

# Every object may include generated headers; generate them first.
$(BUILD)/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(LIBPROTO): $(PROTO_OBJS)
$(LIBCOMMON): $(COMMON_OBJS)
$(LIBSPM): $(SPM_OBJS)
$(LIBHSM): $(HSM_OBJS)
$(LIBCTL): $(CTL_OBJS)
$(LIBLVMAPD): $(LVMAPD_OBJS)
$(LIBLAB): $(LAB_OBJS)
$(LIBTEST): $(TESTLIB_OBJS)
$(BUILD)/lib%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

ALL_LIBS := $(LIBHSM) $(LIBSPM) $(LIBCTL) $(LIBLVMAPD) $(LIBLAB) $(LIBPROTO) $(LIBCOMMON)

$(BUILD)/hsmd: $(BUILD)/hsm/main.o $(LIBHSM) $(LIBPROTO) $(LIBCOMMON)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(HSMD_LDLIBS)
$(BUILD)/spmd: $(BUILD)/spm/main.o $(LIBSPM) $(LIBPROTO) $(LIBCOMMON)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(SPMD_LDLIBS)
$(BUILD)/pkctl: $(BUILD)/ctl/main.o $(LIBCTL) $(LIBPROTO) $(LIBCOMMON)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKCTL_LDLIBS)
$(BUILD)/pk-lvmapd: $(BUILD)/lvmapd/main.o $(LIBLVMAPD) $(LIBCOMMON)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LVMAPD_LDLIBS)

# The lab's shims: built without sanitizers (they are preloaded into sanlock).
$(BUILD)/libpk-%-shim.so: lab/%-shim.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

# ---- unit tests ------------------------------------------------------------
.SECONDEXPANSION:
test_fakes = $(foreach f,$(shell sed -n 's/.*pk-test-fakes:\(.*\)\*\/.*/\1/p' $(1)),\
	$(BUILD)/tests/fakes/$(f).o $(call objs,$(wildcard tests/fakes/$(f)_*.c)))
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $$(call test_fakes,tests/unit/$$*.c) $(LIBTEST) \
		$(ALL_LIBS)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(call test_fakes,tests/unit/$*.c) $(LIBTEST) \
		-Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(LDLIBS_ALL) -lcmocka

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(LIBTEST) $(ALL_LIBS)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBTEST) -Wl,--start-group $(ALL_LIBS) -Wl,--end-group \
		$(LDLIBS_ALL)

tools: $(TOOL_BINS)

# Under TSan a report fails the binary (exit 66); only the uninstrumented
# libraries of tests/tsan.supp are suppressed.
ifeq ($(SANITIZE),thread)
export TSAN_OPTIONS := suppressions=$(CURDIR)/tests/tsan.supp second_deadlock_stack=1 exitcode=66
endif

check-unit: $(UNIT_BINS)
	@BUILD=$(BUILD) tests/run-unit $(UNIT_BINS)

check-integration: all $(TOOL_BINS)
	@BUILD=$(BUILD) tests/run-integration

check: all $(UNIT_BINS) $(TOOL_BINS)
	@BUILD=$(BUILD) tests/run-all $(UNIT_BINS)

# ---- fuzzing (clang libFuzzer) --------------------------------------------
# Every library is rebuilt with clang under ASan+UBSan and libFuzzer's
# coverage (objects under $(FUZZ_BUILD)/obj); a target tests/fuzz/fuzz_X.c
# links them, and the fakes it names on a line `pk-test-fakes: a b` (as
# the unit tests do), into $(FUZZ_BUILD)/fuzz_X. docs/FUZZ.md lists them.
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_FLAGS := $(CSTD) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined $(INCLUDES) $(PKG_CFLAGS)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_SRCS := $(call lib_srcs,common) $(call lib_srcs,proto) $(call lib_srcs,hsm) \
	$(call lib_srcs,spm) $(wildcard tests/lib/*.c)
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRCS)) \
	$(patsubst $(BUILD)/gen/%.c,$(FUZZ_BUILD)/obj/gen/%.o,$(GEN_C))
FUZZ_LIB := $(FUZZ_BUILD)/libpkfuzz.a
fuzz_fakes = $(foreach f,$(shell sed -n 's/.*pk-test-fakes:\(.*\)\*\/.*/\1/p' $(1)),\
	$(FUZZ_BUILD)/obj/tests/fakes/$(f).o \
	$(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(wildcard tests/fakes/$(f)_*.c)))
$(FUZZ_BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -w -c -o $@ $<
$(FUZZ_BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $$(call fuzz_fakes,tests/fuzz/$$*.c) $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(call fuzz_fakes,tests/fuzz/$*.c) $(FUZZ_LIB) \
		$(LDLIBS_ALL) -lcmocka
fuzz-build: $(FUZZ_TARGETS)
# Corpora grow under the build dir, seeded from tests/fuzz/seeds/<target>/.
# Each target runs alone (the machine's cores are shared); any crash, leak
# or timeout stops the run with the target's output.
FUZZ_OPTS := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/
fuzz_run = for t in $(FUZZ_TARGETS); do n=$$(basename $$t); mkdir -p $(FUZZ_BUILD)/corpus-$$n; \
	$$t $(FUZZ_OPTS) -max_total_time=$(1) $(2) $(FUZZ_BUILD)/corpus-$$n \
	$$(test -d tests/fuzz/seeds/$$n && echo tests/fuzz/seeds/$$n) || exit 1; done
fuzz: $(FUZZ_TARGETS)
	@$(call fuzz_run,$${FUZZ_SECONDS:-60},)
# `make check`: a few seconds each, about a minute for all.
fuzz-short: $(FUZZ_TARGETS)
	@rm -f $(FUZZ_BUILD)/fuzz-short.log; \
	{ $(call fuzz_run,$${FUZZ_SECONDS:-3},2>>$(FUZZ_BUILD)/fuzz-short.log); } || \
		{ tail -n 40 $(FUZZ_BUILD)/fuzz-short.log; exit 1; }; \
		echo "fuzz: $(notdir $(FUZZ_TARGETS)) ran clean (log: $(FUZZ_BUILD)/fuzz-short.log)"

# ---- demo, benchmarks ------------------------------------------------------
demo: all
	BUILD=$(BUILD) lab/demo

bench: bench-rpc bench-spm bench-merge bench-thin bench-spm-failover bench-scale
bench-rpc: all $(BUILD)/bench-rpc
	BUILD=$(BUILD) scripts/bench/rpc
bench-merge: all
	BUILD=$(BUILD) scripts/bench/merge
bench-thin: all
	BUILD=$(BUILD) scripts/bench/thin
bench-spm-failover: all
	BUILD=$(BUILD) scripts/bench/spm-failover
bench-scale: all
	BUILD=$(BUILD) scripts/bench/scale
bench-spm: all $(BUILD)/bench-spm
	BUILD=$(BUILD) scripts/bench/spm
# Benchmark programs: bench/NAME.c is $(BUILD)/bench-NAME (scripts/bench/ drives them).
$(BUILD)/bench-%: $(BUILD)/bench/%.o $(LIBPROTO) $(LIBCOMMON)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# ---- install ---------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/hsmd $(BUILD)/spmd $(BUILD)/pk-lvmapd $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 $(BUILD)/pkctl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/poolkeeper/proto
	install -m 0644 $(PROTOS) $(DESTDIR)$(PREFIX)/share/poolkeeper/proto/

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
