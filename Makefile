# cashet: a memoizing command wrapper.
# The hit path lives in `cashet` and never loads libgit2 (its start-up alone
# costs more than a whole hit); everything that writes git objects is in the
# module cashet-git.so, dlopen()ed only when needed.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib/cashet
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=

# make SANITIZE=address,undefined check: everything (binary, modules, unit
# tests, toml-decoder) built with the sanitizers into its own tree, $(O)
# (build-san unless given), binaries included, so that the normal build in
# the checkout is left alone; the tests then run those binaries.
# clang by default: with gcc 12, UBSan ignores log_path when ASan is linked
# too, and the tests find the reports by that path (tests/run-all.sh).
SANITIZE ?=
ifneq ($(SANITIZE),)
O       ?= build-san
ifeq ($(origin CC),default)
CC      := clang
endif
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
O       ?= build
# Where the binary and the modules go (the modules are found next to the
# binary): the checkout itself, or $(O)/ for a sanitizer build.
OUT     := $(if $(SANITIZE),$(O)/)

CC      ?= cc
# make V=1 shows every compiler command line
Q       := $(if $(V),,@)
PKG_CONFIG ?= pkg-config
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) -fPIC -Isrc \
	-DCASHET_LIBDIR='"$(LIBDIR)"' -DCASHET_VERSION='"$(VERSION)"'
ALL_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)
VERSION := 0.1.0

CORE_PKGS := sqlite3 libxxhash libzstd zlib json-c hiredis nettle
# libcrypto (SHA-1 with the CPU's SHA instructions), zlib and libdeflate
# (its Adler-32): the git module's alone, large blobs are hashed where they
# are written, never on a hit.
GIT_PKGS  := libgit2 libcrypto zlib libdeflate
# cashet-serve.so (cashet serve) has its own json-c, not the static copy.
SERVE_PKGS := libmicrohttpd json-c
# cashet-http.so: the client of an http(s):// remote (cashet serve).
HTTP_PKGS := libcurl
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(CORE_PKGS) $(GIT_PKGS) $(SERVE_PKGS) $(HTTP_PKGS))
# These are linked statically (STATIC=0 to opt out): the dynamic loader's
# symbol binding for them was 40% of the instructions of a cache hit.
# libxxhash stays shared: only its .so has the AVX2 dispatch. hiredis (the
# Redis remote) is static too: every command mapped its .so (9 system calls,
# 6 page faults), few use it.
STATIC  ?= 1
STATIC_PKGS := sqlite3 libzstd zlib json-c nettle hiredis
ifeq ($(STATIC),1)
CORE_LIBS  = -Wl,-Bstatic $(shell $(PKG_CONFIG) --libs-only-l $(STATIC_PKGS)) -Wl,-Bdynamic \
	$(shell $(PKG_CONFIG) --libs libxxhash) -ldl -lpthread -lm
else
CORE_LIBS  = $(shell $(PKG_CONFIG) --libs $(CORE_PKGS)) -ldl -lpthread -lm
endif
GIT_LIBS   = $(shell $(PKG_CONFIG) --libs $(GIT_PKGS))
SERVE_LIBS = $(shell $(PKG_CONFIG) --libs $(SERVE_PKGS)) -lpthread
HTTP_LIBS  = $(shell $(PKG_CONFIG) --libs $(HTTP_PKGS))
UNIT_LIBS  = $(shell $(PKG_CONFIG) --libs cmocka)

# The layers (see README, "Source layout"): the core is everything the
# binary links; git/, serve/ and remote/curl/ are the dlopen()ed modules.
CORE_DIRS := util key store exec trace remote pipeline
CORE_SRC := $(foreach d,$(CORE_DIRS),$(wildcard src/$(d)/*.c))
CLI_SRC  := $(wildcard src/cli/*.c)
GIT_SRC  := $(wildcard src/git/*.c)
SERVE_SRC := $(wildcard src/serve/*.c)
HTTP_SRC := $(wildcard src/remote/curl/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(O)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(O)/%.o)
GIT_OBJ  := $(GIT_SRC:%.c=$(O)/%.o)
SERVE_OBJ := $(SERVE_SRC:%.c=$(O)/%.o)
HTTP_OBJ := $(HTTP_SRC:%.c=$(O)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)

PROGS   := $(OUT)cashet $(OUT)cashet-git.so $(OUT)cashet-serve.so $(OUT)cashet-http.so $(OUT)cashet-trace.so

all: $(PROGS) $(O)/toml-decoder $(O)/trace-run

$(O)/%.o: %.c $(wildcard src/*/*.h src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# A module exports its entry table and nothing else.
$(GIT_OBJ) $(SERVE_OBJ) $(HTTP_OBJ): ALL_CFLAGS += -fvisibility=hidden

# The git module calls back into cashet's own helpers (util, record), so
# they are exported; the statically linked libraries are not (--exclude-libs).
# A sanitizer build names them: ALL would also hide clang's static sanitizer
# runtime, from the modules and from libc, whose own malloc() then hands
# cashet memory that ASan's free() refuses.
empty :=
space := $(empty) $(empty)
STATIC_ARCHIVES = $(patsubst -l%,lib%.a,$(shell $(PKG_CONFIG) --libs-only-l $(STATIC_PKGS)))
EXCLUDE_LIBS = $(if $(SANITIZE),$(subst $(space),:,$(strip $(STATIC_ARCHIVES))),ALL)
$(OUT)cashet: $(CORE_OBJ) $(CLI_OBJ)
	$(CC) $(ALL_LDFLAGS) -rdynamic -Wl,--exclude-libs,$(EXCLUDE_LIBS) -o $@ $^ $(CORE_LIBS)

$(OUT)cashet-git.so: $(GIT_OBJ)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ $(GIT_LIBS)

# libmicrohttpd brings GnuTLS and eight more libraries: loading them in
# every process added more than a millisecond to a cache hit.
$(OUT)cashet-serve.so: $(SERVE_OBJ)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ $(SERVE_LIBS)

# libcurl brings some 30 libraries (OpenSSL, nghttp2, libssh2, LDAP,
# Kerberos, ...): loaded only when an http(s):// remote is used, after a
# local miss.
$(OUT)cashet-http.so: $(HTTP_OBJ)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ $(HTTP_LIBS)

# The tracer's LD_PRELOAD library (src/preload): loaded into every traced
# process, so it links nothing but libc, exports only the functions it
# wraps, and is never sanitized (a sanitizer runtime has to be the first
# library of a process; the traced programs are not built with it).
# Without _FORTIFY_SOURCE, whose inline open() would clash with its own.
$(OUT)cashet-trace.so: src/preload/trace-preload.c src/trace/preload.h
	@mkdir -p $(dir $(O)/x)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -U_FORTIFY_SOURCE -fPIC -fvisibility=hidden -Isrc \
		$(LDFLAGS) -shared -o $@ $<

$(O)/toml-decoder: $(O)/tests/toml/decoder.o $(CORE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

# Runs a command under the file-access tracer and lists what it touched.
# Only the tracer and util are linked: bench/trace-overhead times it, and
# the start-up of the whole core is no part of what tracing costs.
# It loads the preload library of this tree (as the unit tests do).
$(O)/tests/trace/trace-run.o $(O)/tests/unit/test_trace.o: ALL_CFLAGS += \
	-DCASHET_TEST_TRACE_PRELOAD='"$(abspath $(OUT)cashet-trace.so)"'
$(O)/trace-run: $(O)/tests/trace/trace-run.o $(O)/src/trace/trace.o $(O)/src/util/util.o $(O)/src/util/fsrec.o \
		$(O)/src/util/hash.o | $(OUT)cashet-trace.so
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs libxxhash) -lpthread

# Unit tests that open a store load cashet-git.so as the binary does: they
# are told where this tree builds it and export the core's symbols, which
# the module calls back into (tests/unit/fixture.h).
$(O)/tests/unit/%.o: ALL_CFLAGS += -DCASHET_TEST_GIT_MODULE='"$(abspath $(OUT)cashet-git.so)"'
$(UNIT_SRC:%.c=$(O)/%.o): $(wildcard tests/unit/*.h)
$(O)/tests/%: $(O)/tests/unit/%.o $(CORE_OBJ) | $(OUT)cashet-git.so $(OUT)cashet-trace.so
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -rdynamic -Wl,--exclude-libs,$(EXCLUDE_LIBS) -o $@ $^ $(CORE_LIBS) $(UNIT_LIBS)
# The option parser is the CLI's, not the core's.
$(O)/tests/test_options: $(O)/src/cli/options.o

# Installs the Debian packages the build and the tests need, when missing.
deps:
	@sh contrib/install-deps.sh

demo: deps all
	@sh contrib/examples/demo.sh

# Every test prints TAP; .ci/run counts the lines. The CLI tests run the
# binary of this build (CASHET_TEST_BUILD); a sanitized run also gets a
# directory for the sanitizers' reports, which fail it (tests/run-all.sh).
check: all $(UNIT_BIN)
	@CASHET_TEST_BUILD=$(abspath $(or $(OUT),.)) \
		$(if $(SANITIZE),CASHET_SAN_LOG=$(abspath $(O))/san-log) sh tests/run-all.sh $(O)

# The older name of check.
test: check

test-unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do CMOCKA_MESSAGE_OUTPUT=TAP $$t || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 755 cashet $(DESTDIR)$(BINDIR)/cashet
	install -m 755 cashet-git.so $(DESTDIR)$(LIBDIR)/cashet-git.so
	install -m 755 cashet-serve.so $(DESTDIR)$(LIBDIR)/cashet-serve.so
	install -m 755 cashet-http.so $(DESTDIR)$(LIBDIR)/cashet-http.so
	install -m 755 cashet-trace.so $(DESTDIR)$(LIBDIR)/cashet-trace.so
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	-install -m 644 man/*.5 $(DESTDIR)$(MANDIR)/man5/ 2>/dev/null
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 644 completions/cashet.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cashet
	install -m 644 completions/_cashet $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_cashet
	install -m 644 completions/cashet.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/cashet.fish

clean:
	rm -rf $(O) $(PROGS)

.PHONY: all deps demo check test test-unit install clean

# Lists the sources that .clang-format would change (clang-format --dry-run
# FILE shows how; clang-format -i FILE applies it) and fails if there are
# any. .ci/run runs it after the suites.
CLANG_FORMAT ?= clang-format
FORMAT_SRC := $(wildcard src/*/*.c src/*/*.h src/*/*/*.c src/*/*/*.h tests/unit/*.c tests/trace/*.c)

format-check:
	@command -v $(CLANG_FORMAT) > /dev/null || { echo "format-check: $(CLANG_FORMAT) is not installed" >&2; exit 2; }
	@n=0; for f in $(FORMAT_SRC); do \
		$(CLANG_FORMAT) --dry-run -Werror "$$f" 2> /dev/null || { echo "$$f"; n=$$((n + 1)); }; \
	done; \
	if [ "$$n" -gt 0 ]; then \
		echo "format-check: $$n of $(words $(FORMAT_SRC)) files differ from .clang-format"; exit 1; \
	fi

.PHONY: format-check

# libFuzzer targets (need clang and, on Debian, the libclang-rt-*-dev
# package that matches it). Each target NAME is tests/fuzz/NAME_fuzz.c plus
# the sources in FUZZ_SRC_NAME, its seeds are tests/fuzz/corpus/NAME/ (only
# read), and what the fuzzer finds goes to $(FUZZ_DIR): new inputs to
# corpus-NAME/, crashes to crash-NAME-*. `make fuzz-NAME` runs one target
# for FUZZ_SECONDS; `make fuzz-ci` builds all and runs each in turn, failing
# on the first crash, leak, sanitizer report or hang.
FUZZ_SECONDS ?= 20
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_DIR     := $(O)/fuzz
# an input that takes longer than this many seconds is reported as a hang
FUZZ_TIMEOUT ?= 10
FUZZ_TARGETS := toml canon meta manifest serve

# util.c records what a pipeline's witness asks (fsrec.c), which hashes
FUZZ_UTIL := src/util/util.c src/util/fsrec.c src/util/hash.c
FUZZ_SRC_toml  := $(FUZZ_UTIL) src/util/toml.c
FUZZ_SRC_canon := $(FUZZ_UTIL) src/key/canon.c src/key/canon-python.c src/key/canon-sh.c
FUZZ_SRC_meta  := $(FUZZ_UTIL) src/store/record.c
FUZZ_SRC_manifest := $(FUZZ_UTIL) src/store/manifest.c
# serve: submit_prepare is called as the server does, so the core is linked too
FUZZ_SRC_serve := $(CORE_SRC) src/serve/request.c src/serve/submit.c
FUZZ_LIBS      := $(shell $(PKG_CONFIG) --libs $(CORE_PKGS)) -ldl -lpthread -lm

FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz-%)
fuzz_obj   = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(1))

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard src/*/*.h src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) -Isrc $(PKG_CFLAGS) -DCASHET_VERSION='"$(VERSION)"' -c -o $@ $<

define fuzz_rule
$(FUZZ_DIR)/fuzz-$(1): $(call fuzz_obj,$(FUZZ_SRC_$(1)) tests/fuzz/$(1)_fuzz.c)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $$@ $$^ $(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

# FUZZ_RUN(NAME): one bounded run on the seeds and what earlier runs found.
FUZZ_RUN = mkdir -p $(FUZZ_DIR)/corpus-$(1) && \
	$(FUZZ_DIR)/fuzz-$(1) -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
		-artifact_prefix=$(FUZZ_DIR)/crash-$(1)- $(FUZZ_DIR)/corpus-$(1) tests/fuzz/corpus/$(1)

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: $(FUZZ_DIR)/fuzz-%
	$(call FUZZ_RUN,$*)

fuzz-build: $(FUZZ_BINS)

# One TAP line per target, which .ci/run counts.
fuzz-ci: $(FUZZ_BINS)
	@n=0; for t in $(FUZZ_TARGETS); do \
		n=$$((n + 1)); \
		$(call FUZZ_RUN,$$t) 2>$(FUZZ_DIR)/$$t.log || { \
			tail -n 60 $(FUZZ_DIR)/$$t.log; echo "not ok $$n fuzz $$t for $(FUZZ_SECONDS)s (log: $(FUZZ_DIR)/$$t.log)"; exit 1; }; \
		echo "ok $$n fuzz $$t for $(FUZZ_SECONDS)s: $$(grep -h '^#[0-9]*.*DONE' $(FUZZ_DIR)/$$t.log | tail -n 1)"; \
	done

.PHONY: fuzz-build fuzz-ci $(FUZZ_TARGETS:%=fuzz-%)
