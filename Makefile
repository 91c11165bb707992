# torsieve: the only build entry point.
#
#   make                 ./torsieve (objects in build/<compiler>[-san]/)
#   make CC=clang        the same with clang
#   make SANITIZE=1      ASan + UBSan (alignment included), aborting on the first report
#   make deps            install the Debian packages that are missing (as root); package
#                        scripts may start no service (tor's must not run: the tests start
#                        their own), so a policy-rc.d refusing starts is in place meanwhile;
#                        redsocks (only a benchmark's peer) is not left enabled at boot
#   make test            deps, then every test; ends with "N passed, N failed"
#   make demo            deps, build, a Tor-only gateway live in namespaces (test/tor/demo.sh)
#   make fuzz            fuzz every harness for FUZZ_SECONDS (default 600) each
#   make bench           benchmarks; see docs/performance.md
#   make clean
#
# CFLAGS, CPPFLAGS and LDFLAGS are the user's; torsieve's own warnings are
# always added and always fatal.

CC       ?= cc
CFLAGS   ?= -O2 -g
LDFLAGS  ?=
V        ?= 0

CCNAME   := $(notdir $(firstword $(CC)))
O        ?= build/$(CCNAME)$(if $(filter 1,$(SANITIZE)),-san)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wpointer-arith -Wvla -Wundef
TS_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -MMD -MP $(WARNINGS)
ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TS_CFLAGS += $(SAN_FLAGS)
LDFLAGS   += $(SAN_FLAGS)
endif
LDLIBS   := -lpcap -lnetfilter_queue -lmnl -levent -levent_pthreads -lpthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

# The dependency-free core: it cross-compiles for MIPS with no libraries.
CORE_SRCS   := engine/decode_link.c engine/decode_ip.c engine/decode_transport.c \
               engine/decode_names.c engine/stats.c engine/classify.c engine/policy_match.c \
               engine/flow.c engine/reassembly.c engine/defrag.c engine/icmp_error.c engine/socks5.c engine/sha256.c \
               engine/tor_pool.c plugins/dns_msg.c engine/name_map.c
ENGINE_SRCS := $(filter-out engine/main.c,$(wildcard engine/*.c)) $(wildcard plugins/*.c)
CORE_OBJS   := $(CORE_SRCS:%.c=$(O)/%.o)
# The shipped default policy (etc/torsieve.conf) is built into the binary.
LIB_OBJS    := $(ENGINE_SRCS:%.c=$(O)/%.o) $(O)/gen/default_policy.o

%/gen/default_policy.c: etc/torsieve.conf
	@mkdir -p $(dir $@)
	$(Q){ echo '#include "torsieve/policy.h"'; \
	  echo 'const char ts_default_policy[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; \
	  echo 'const size_t ts_default_policy_len = sizeof(ts_default_policy) - 1;'; } >$@

$(O)/gen/default_policy.o: $(O)/gen/default_policy.c
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) -c -o $@ $<

# Unit tests: those on the core also run on big-endian MIPS.
UNIT_CORE   := test_decode test_classify test_flow test_reassembly test_defrag test_icmp_error \
               test_socks5 test_sha256 test_tor_pool test_dns test_name_map
UNIT_FULL   := $(filter-out $(UNIT_CORE),$(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c)))

FUZZERS     := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 600
FUZZ_CC     ?= clang
FUZZ_O      := build/fuzz
FUZZ_FLAGS  := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1

DEPS_PKGS := make gcc clang clang-format libclang-rt-14-dev libc6-dev pkg-config libpcap-dev tcpdump \
             tcpflow tshark libnids-dev \
             libnetfilter-queue-dev libmnl-dev libevent-dev iptables iproute2 curl bind9-dnsutils \
             iputils-ping nmap hping3 tor redsocks \
             python3 python3-scapy gcc-mips-linux-gnu libc6-dev-mips-cross qemu-user-static

.PHONY: all deps test demo fuzz fuzzers fuzz-replays bench clean units unit-core
# Keep the objects that chained rules build on the way (fuzz harness objects).
.SECONDARY:
.DEFAULT_GOAL := all

all: torsieve

torsieve: $(O)/torsieve
	$(Q)cp $< $@

$(O)/torsieve: $(O)/engine/main.o $(O)/libtorsieve.a
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/libtorsieve.a: $(LIB_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(O)/libtorsieve-core.a: $(CORE_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) -c -o $@ $<

# Unit tests
units: $(UNIT_CORE:%=$(O)/%) $(UNIT_FULL:%=$(O)/%)
unit-core: $(UNIT_CORE:%=$(O)/%)

$(UNIT_CORE:%=$(O)/%): $(O)/%: $(O)/test/unit/%.o $(O)/libtorsieve-core.a
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

$(UNIT_FULL:%=$(O)/%): $(O)/%: $(O)/test/unit/%.o $(O)/libtorsieve.a
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz harnesses, two ways: with libFuzzer (clang), and as plain programs
# that replay a corpus (any compiler, built in $(O) with the test variant).
fuzzers: $(FUZZERS:%=$(FUZZ_O)/fuzz_%)
fuzz-replays: $(FUZZERS:%=$(O)/replay_%)

$(FUZZ_O)/fuzz_%: fuzz/fuzz_%.c $(ENGINE_SRCS) $(FUZZ_O)/gen/default_policy.c \
		$(wildcard include/torsieve/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(TS_CFLAGS) $(FUZZ_FLAGS) -o $@ $< $(ENGINE_SRCS) \
		$(FUZZ_O)/gen/default_policy.c $(LDLIBS)

$(O)/replay_%: $(O)/fuzz/fuzz_%.o $(O)/fuzz/replay_main.o $(O)/libtorsieve.a
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz: deps fuzzers
	$(Q)for f in $(FUZZERS); do \
		mkdir -p $(FUZZ_O)/new-$$f $(FUZZ_O)/crashes; \
		echo "fuzzing $$f for $(FUZZ_SECONDS)s"; \
		$(FUZZ_O)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_O)/crashes/$$f- \
			$(FUZZ_O)/new-$$f fuzz/corpus/$$f || exit 1; \
	done

bench: deps
	$(Q)$(MAKE) --no-print-directory O=build/bench SANITIZE= CFLAGS="-O2 -g" \
		build/bench/bench_decode build/bench/bench_classify build/bench/bench_reassembly \
		build/bench/tcp-reassembly.pcap build/bench/torsieve build/bench/nfq_bare \
		build/bench/udp_flood
	$(Q)build/bench/bench_decode
	$(Q)build/bench/bench_classify
	$(Q)build/bench/bench_reassembly build/bench/tcp-reassembly.pcap
	$(Q)test/bench/bench_nfqueue.sh
	$(Q)for p in socks_sink relay_load; do $(CC) $(CPPFLAGS) $(TS_CFLAGS) -O2 -g $(LDFLAGS) \
		-o build/bench/$$p test/bench/$$p.c || exit 1; done; test/bench/bench_relay.sh

build/bench/bench_decode: test/bench/bench_decode.c $(O)/libtorsieve.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/bench/bench_classify: test/bench/bench_classify.c $(O)/libtorsieve.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libnids is the peer; Debian's libnids-dev ships no pkg-config file, and the
# shared library brings its own dependencies (libnet, glib, libpcap).
build/bench/bench_reassembly: test/bench/bench_reassembly.c $(O)/libtorsieve.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lnids $(LDLIBS)

# The NFQUEUE benchmark's peer (a bare accept loop on the same library) and
# its traffic generator; test/bench/bench_nfqueue.sh runs them.
build/bench/nfq_bare: test/bench/nfq_bare.c
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lnetfilter_queue -lmnl

build/bench/udp_flood: test/bench/udp_flood.c test/bench/bench_clock.h
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CPPFLAGS) $(TS_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# bench_reassembly's capture (about 280 MB): generated, never committed, and
# made again only when the generator changes.
build/bench/tcp-reassembly.pcap: test/bench/make-tcp-capture.py
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q)/usr/bin/python3 $< $@.tmp >/dev/null && mv $@.tmp $@

deps:
	@missing=""; \
	for p in $(DEPS_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing Debian packages:$$missing"; \
			echo "run 'make deps' as root, or: apt-get install$$missing"; exit 1; \
		fi; \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		guard=; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
				&& guard=1; \
		fi; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		rc=$$?; [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; \
		[ $$rc = 0 ] || { echo "apt-get install$$missing failed"; exit 1; }; \
		case " $$missing " in *" redsocks "*) \
			command -v systemctl >/dev/null && systemctl disable redsocks >/dev/null 2>&1;; \
		esac; \
	fi

test: deps
	$(Q)test/run.sh

demo: deps all
	$(Q)TORSIEVE=$(CURDIR)/torsieve test/tor/demo.sh

clean:
	rm -rf build torsieve

-include $(shell find build -name '*.d' 2>/dev/null)
