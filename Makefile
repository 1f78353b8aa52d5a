# wahook - build, test, run. `make` builds build/wahook.fcgi and build/wahook-drain;
# `make check` installs what is missing (Debian packages) and runs every test;
# `make run` starts a local demo service. `make SAN=1 ...` builds into build/san
# with AddressSanitizer and UndefinedBehaviorSanitizer.

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
DESTDIR ?=
PKG_CONFIG ?= pkg-config

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
       -Wconversion -Wno-sign-conversion -Wpointer-arith -Wvla
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -MMD -MP \
       $(shell $(PKG_CONFIG) --cflags fcgi json-c libcrypto libpq libcurl 2>/dev/null)

B = build
ifeq ($(SAN),1)
B = build/san
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

LIBS_FCGI  = $(shell $(PKG_CONFIG) --libs fcgi json-c libcrypto libpq 2>/dev/null || echo -lfcgi -ljson-c -lcrypto -lpq) -pthread
LIBS_DRAIN = $(shell $(PKG_CONFIG) --libs libcurl json-c libpq libcrypto 2>/dev/null || echo -lcurl -ljson-c -lpq -lcrypto) -pthread -lm

# The modules are the directories: cgi/shared (both programs; it sees only its
# own headers), cgi/responder (wahook.fcgi) and cgi/drainer (wahook-drain), each
# X.c with its X.h. A program's objects are compiled with its directory and
# shared/ on the include path and nothing else, so a shared module cannot
# include a program's header and neither program another's.
mods = $(basename $(notdir $(wildcard cgi/$(1)/*.c)))
SHARED_MODS    = $(call mods,shared)
RESPONDER_MODS = $(call mods,responder)
DRAINER_MODS   = $(call mods,drainer)
RESPONDER_MAIN = wahook_fcgi
DRAINER_MAIN   = wahook_drain

obj = $(patsubst %,$(B)/obj/$(1)/%.o,$(2))
SHARED_O    = $(call obj,shared,$(SHARED_MODS))
RESPONDER_O = $(call obj,responder,$(RESPONDER_MODS))
DRAINER_O   = $(call obj,drainer,$(DRAINER_MODS))
INC_shared    = -Icgi/shared
INC_responder = -Icgi/shared -Icgi/responder
INC_drainer   = -Icgi/shared -Icgi/drainer

# unit tests: tests/unit/<dir>/test_X.c tests cgi/<dir>/X.c
UNIT_SRC   = $(wildcard tests/unit/*/test_*.c)
UNIT_TESTS = $(basename $(notdir $(UNIT_SRC)))
# the known names (env.h) each program links, generated from both tables
NAMES_OBJ = $(B)/obj/conf_names.o

all: $(B)/wahook.fcgi $(B)/wahook-drain

$(B)/obj/shared/%.o: cgi/shared/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_shared) -c $< -o $@
$(B)/obj/responder/%.o: cgi/responder/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_responder) -c $< -o $@
$(B)/obj/drainer/%.o: cgi/drainer/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_drainer) -c $< -o $@

# the ingest statement is kept readable in sql/; store.c includes it as strings
# (comment lines dropped, and the trailing semicolon: PQprepare takes one
# statement): ingest_sql.h all of it, ingest_lean_sql.h without its
# "-- BEGIN full" ... "-- END full" part
# (INGEST_SQL: another copy of it, for make bench's cost of its NOTIFY)
INGEST_SQL ?= sql/statements/ingest.sql
SQL_TO_C = sed -e '/^--/d' -e 's/;$$//' -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/'
$(B)/gen/ingest_sql.h: $(INGEST_SQL)
	@mkdir -p $(@D)
	$(SQL_TO_C) $< > $@
$(B)/gen/ingest_lean_sql.h: $(INGEST_SQL)
	@mkdir -p $(@D)
	sed -e '/^-- BEGIN full/,/^-- END full/d' $< | $(SQL_TO_C) > $@

# env_names_* (env.h): the names of the configuration tables, so that each
# program knows the other's variables from a typo (tools/conf-names)
$(B)/gen/conf_names.c: cgi/responder/config.c cgi/drainer/drain_config.c tools/conf-names
	@mkdir -p $(@D)
	tools/conf-names $(filter %.c,$^) > $@.tmp && mv $@.tmp $@
$(NAMES_OBJ): $(B)/gen/conf_names.c
	$(CC) $(ALL_CFLAGS) $(INC_shared) -c $< -o $@

$(B)/obj/responder/store.o: $(B)/gen/ingest_sql.h $(B)/gen/ingest_lean_sql.h
$(B)/obj/responder/store.o: ALL_CFLAGS += -I$(B)/gen

CMOCKA_CFLAGS = $(shell $(PKG_CONFIG) --cflags cmocka)
CMOCKA_LIBS   = $(shell $(PKG_CONFIG) --libs cmocka)
$(B)/obj/test/shared/%.o: tests/unit/shared/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_shared) $(CMOCKA_CFLAGS) -c $< -o $@
$(B)/obj/test/responder/%.o: tests/unit/responder/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_responder) $(CMOCKA_CFLAGS) -c $< -o $@
$(B)/obj/test/drainer/%.o: tests/unit/drainer/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_drainer) $(CMOCKA_CFLAGS) -c $< -o $@

$(B)/wahook.fcgi: $(SHARED_O) $(RESPONDER_O) $(NAMES_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_FCGI)

$(B)/wahook-drain: $(SHARED_O) $(DRAINER_O) $(NAMES_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_DRAIN)

# a unit test links its directory's modules (and shared/'s) but the main
UNIT_SHARED    = $(SHARED_O) $(NAMES_OBJ)
UNIT_RESPONDER = $(UNIT_SHARED) $(filter-out %/$(RESPONDER_MAIN).o,$(RESPONDER_O))
UNIT_DRAINER   = $(UNIT_SHARED) $(filter-out %/$(DRAINER_MAIN).o,$(DRAINER_O))
define unit_rule
$$(B)/$(1): $$(B)/obj/test/$(2)/$(1).o $$(UNIT_$(3))
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS_$(4)) $$(CMOCKA_LIBS)
endef
$(foreach t,$(basename $(notdir $(wildcard tests/unit/shared/test_*.c))),\
    $(eval $(call unit_rule,$(t),shared,SHARED,DRAIN)))
$(foreach t,$(filter-out test_batch,$(basename $(notdir $(wildcard tests/unit/responder/test_*.c)))),\
    $(eval $(call unit_rule,$(t),responder,RESPONDER,FCGI)))
$(foreach t,$(basename $(notdir $(wildcard tests/unit/drainer/test_*.c))),\
    $(eval $(call unit_rule,$(t),drainer,DRAINER,DRAIN)))

# test_batch links batch.c alone: the test defines the store functions it calls
$(B)/test_batch: $(B)/obj/test/responder/test_batch.o $(call obj,responder,batch)
	$(CC) $(LDFLAGS) -o $@ $^ -pthread $(CMOCKA_LIBS)

units: $(patsubst %,$(B)/%,$(UNIT_TESTS))

deps:
	@tools/deps

check: deps checksrc
	$(MAKE) all units
	WAHOOK_BUILD=$(B) python3 tests/run.py $(TESTS)

run: deps
	$(MAKE) all
	tools/run

clean:
	rm -rf build

.PHONY: all units deps check run clean
-include $(wildcard $(B)/obj/*.d $(B)/obj/*/*.d $(B)/obj/test/*/*.d)

# --- fuzz, lint, valgrind, fuzz regressions ---------------------------------
# The fuzz targets' regression inputs (tests/fuzz/regressions/<target>/) are
# replayed by `make check` through test_fuzz_<target>: the target built without
# libFuzzer (tests/fuzz/replay.c supplies main) in the ordinary or SAN=1 build.
FUZZ_TARGETS = payload verify
FUZZ_REPLAY  = $(patsubst %,$(B)/test_fuzz_%,$(FUZZ_TARGETS))
$(FUZZ_REPLAY): $(B)/test_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(UNIT_RESPONDER)
	$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -Wno-missing-prototypes $(INC_responder) \
	    -DREPLAY_DIR='"tests/fuzz/regressions/$*"' $(LDFLAGS) -o $@ $^ $(LIBS_FCGI)
units: $(FUZZ_REPLAY)

# `make fuzz`: libFuzzer (clang, Debian's libclang-rt-14-dev) with ASan+UBSan,
# each target for FUZZ_SECONDS, seeded from tests/fixtures (and, when a copy sits
# beside the clone, ../shared/fixtures) by tests/fuzz/seeds.py into
# build/fuzz/seeds (never the repo). The corpus grows in build/fuzz/corpus; a
# crash lands in build/fuzz/artifacts/<target>/: copy it to
# tests/fuzz/regressions/<target>/ once fixed.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FZ = build/fuzz
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all -fno-omit-frame-pointer $(INC_responder) -I$(B)/gen \
       $(shell $(PKG_CONFIG) --cflags fcgi json-c libcrypto libpq 2>/dev/null)
FUZZ_SRC = $(wildcard cgi/shared/*.c) $(filter-out %/$(RESPONDER_MAIN).c,$(wildcard cgi/responder/*.c)) \
    $(B)/gen/conf_names.c
$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRC) $(B)/gen/ingest_sql.h \
    $(B)/gen/ingest_lean_sql.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(LIBS_FCGI)

fuzz: deps-fire
	$(MAKE) $(patsubst %,$(FZ)/fuzz_%,$(FUZZ_TARGETS))
	python3 tests/fuzz/seeds.py $(FZ)/seeds
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FZ)/corpus/$$t $(FZ)/artifacts/$$t; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 $$dict \
	    -artifact_prefix=$(FZ)/artifacts/$$t/ $(FZ)/corpus/$$t $(FZ)/seeds/$$t \
	    tests/fuzz/regressions/$$t; \
	done

# `make lint`: cppcheck (warning, portability, performance; real bugs, not
# style) and clang-tidy with clang-analyzer-* (path-sensitive: leaks, NULL,
# use-after-free), bugprone-* and cert-* less the checks that only restate this
# codebase's deliberate style: easily-swappable-parameters (prototypes are
# documented), reserved-identifier (none used), narrowing-conversions
# (-Wconversion already covers them), cert-err33-c (ignoring snprintf/fclose
# results where truncation is checked otherwise), DeprecatedOrUnsafeBufferHandling
# (wants Annex K memcpy_s, which glibc lacks), implicit-widening-of-multiplication
# (flags constant sizes like 1024 * 1024 that cannot overflow int), and
# clang-analyzer-valist.Uninitialized (clang 14 reports "va_end() on an
# uninitialized va_list" at calls of log_end() in a file with no va_list at all,
# and at the vsnprintf() right after va_start() in payload.c), and
# clang-analyzer-optin.performance.Padding (an opt-in layout hint: it asks
# small constant tables to order their fields by size). Both exit
# non-zero on a finding; a false positive is suppressed at its line with a
# NOLINT comment saying why.
LINT_CFLAGS = -std=c11 -D_GNU_SOURCE -I$(B)/gen \
       $(shell $(PKG_CONFIG) --cflags-only-I fcgi json-c libcrypto libpq libcurl 2>/dev/null)
TIDY_CHECKS = -*,clang-analyzer-*,bugprone-*,cert-*,\
-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,\
-cert-dcl37-c,-cert-dcl51-cpp,-bugprone-narrowing-conversions,-cert-err33-c,\
-bugprone-implicit-widening-of-multiplication-result,-clang-analyzer-valist.Uninitialized,\
-clang-analyzer-optin.performance.Padding,\
-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling
lint: checksrc deps-fire $(B)/gen/ingest_sql.h $(B)/gen/ingest_lean_sql.h
	@set -e; for d in shared responder drainer; do \
	  inc="-Icgi/shared -Icgi/$$d"; \
	  cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
	    --enable=warning,portability,performance --suppress=missingIncludeSystem \
	    -D_GNU_SOURCE $$inc -I$(B)/gen cgi/$$d/; \
	  clang-tidy --quiet --warnings-as-errors='*' --checks='$(TIDY_CHECKS)' \
	    cgi/$$d/*.c -- $(LINT_CFLAGS) $$inc; \
	done

# `make checksrc` (also run by `make lint` and `make check`): a grep that fails
# on a call of a banned function (sprintf, strcpy, strcat, atoi, strtok, gets,
# ...; tools/checksrc lists them with what to use instead).
checksrc:
	@tools/checksrc

# `make valgrind`: every unit binary (ordinary build: valgrind and ASan do not
# mix) under memcheck; definite and indirect leaks are errors.
valgrind: deps-fire
	$(MAKE) SAN= units
	@set -e; for t in $(patsubst %,build/%,$(UNIT_TESTS)) \
	    $(patsubst %,build/test_fuzz_%,$(FUZZ_TARGETS)); do \
	  echo "valgrind $$t"; \
	  valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    --error-exitcode=1 $$t >/dev/null; \
	done; echo "valgrind: clean"

deps-fire:
	@tools/deps fire

.PHONY: fuzz lint checksrc valgrind deps-fire

# --- install ------------------------------------------------------------------
# `make install PREFIX=/usr DESTDIR=/tmp/pkg`: the responder where CGI/FastCGI
# programs go, the drainer in bin, wahook-setup in sbin, the migrations and
# operator scripts in share/wahook, the reply program examples in share/wahook/reply
# (executable: usr/share/doc loses its x bits in a package), the server and systemd examples in
# share/doc/wahook/examples (their /usr/local paths turned into PREFIX's), the
# manual pages in man8. `make uninstall` removes exactly these files.
INSTALL ?= install
CGIDIR   = $(PREFIX)/lib/cgi-bin
BINDIR   = $(PREFIX)/bin
SBINDIR  = $(PREFIX)/sbin
SHAREDIR = $(PREFIX)/share/wahook
EXDIR    = $(PREFIX)/share/doc/wahook/examples
MAN8DIR  = $(PREFIX)/share/man/man8
INST_SQL      = $(wildcard sql/[0-9][0-9][0-9]_*.sql)
INST_SCRIPTS  = $(wildcard scripts/migrate scripts/prune scripts/replay scripts/sample-webhook \
                scripts/export-metrics)
INST_EXAMPLES = lighttpd.conf.example $(filter-out examples/reply examples/prometheus,\
                $(wildcard examples/*))
INST_PROM     = $(wildcard examples/prometheus/*)
INST_REPLY    = $(wildcard examples/reply/*)
INST_MAN      = man/wahook.fcgi.8 man/wahook-drain.8 man/wahook-setup.8

install: all
	$(INSTALL) -d $(DESTDIR)$(CGIDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(SHAREDIR)/sql $(DESTDIR)$(SHAREDIR)/scripts $(DESTDIR)$(SHAREDIR)/reply \
	    $(DESTDIR)$(EXDIR) $(DESTDIR)$(MAN8DIR)
	$(INSTALL) -m 0755 $(B)/wahook.fcgi $(DESTDIR)$(CGIDIR)/wahook.fcgi
	$(INSTALL) -m 0755 $(B)/wahook-drain $(DESTDIR)$(BINDIR)/wahook-drain
	$(INSTALL) -m 0755 scripts/setup $(DESTDIR)$(SBINDIR)/wahook-setup
	$(INSTALL) -m 0644 $(INST_SQL) $(DESTDIR)$(SHAREDIR)/sql/
	$(INSTALL) -m 0755 $(INST_SCRIPTS) $(DESTDIR)$(SHAREDIR)/scripts/
	@set -e; for f in $(INST_EXAMPLES); do \
	  sed -e '/^PATH=/!s|/usr/local/|$(PREFIX)/|g' $$f > $(DESTDIR)$(EXDIR)/$${f##*/}; \
	  chmod 0644 $(DESTDIR)$(EXDIR)/$${f##*/}; done
	$(INSTALL) -m 0755 $(INST_REPLY) $(DESTDIR)$(SHAREDIR)/reply/
	$(INSTALL) -d $(DESTDIR)$(EXDIR)/prometheus
	$(INSTALL) -m 0644 $(INST_PROM) $(DESTDIR)$(EXDIR)/prometheus/
	$(INSTALL) -m 0644 $(INST_MAN) $(DESTDIR)$(MAN8DIR)/

uninstall:
	rm -f $(DESTDIR)$(CGIDIR)/wahook.fcgi $(DESTDIR)$(BINDIR)/wahook-drain \
	    $(DESTDIR)$(SBINDIR)/wahook-setup
	rm -f $(addprefix $(DESTDIR)$(SHAREDIR)/sql/,$(notdir $(INST_SQL)))
	rm -f $(addprefix $(DESTDIR)$(SHAREDIR)/scripts/,$(notdir $(INST_SCRIPTS)))
	rm -f $(addprefix $(DESTDIR)$(EXDIR)/,$(notdir $(INST_EXAMPLES)))
	rm -f $(addprefix $(DESTDIR)$(SHAREDIR)/reply/,$(notdir $(INST_REPLY)))
	rm -f $(addprefix $(DESTDIR)$(EXDIR)/prometheus/,$(notdir $(INST_PROM)))
	rm -f $(addprefix $(DESTDIR)$(MAN8DIR)/,$(notdir $(INST_MAN)))
	-rmdir $(DESTDIR)$(SHAREDIR)/sql $(DESTDIR)$(SHAREDIR)/scripts $(DESTDIR)$(SHAREDIR)/reply \
	    $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(EXDIR)/prometheus $(DESTDIR)$(EXDIR) \
	    $(DESTDIR)$(PREFIX)/share/doc/wahook \
	    2>/dev/null

.PHONY: install uninstall

# --- Debian package ----------------------------------------------------------
# `make deb`: build/wahook_<version>_<arch>.deb from debian/ with
# dpkg-buildpackage (debhelper), built in a copy of the tree under build/deb
# so that nothing lands beside the clone; then lintian, failing on any error
# or warning. Installs debhelper, dpkg-dev, fakeroot and lintian if missing.
deb:
	@tools/deps deb
	tools/package

.PHONY: deb

# --- benchmark ---------------------------------------------------------------
# `make bench`: installs wrk, pgbench and gnuplot if missing (tools/deps bench),
# builds the ordinary (not SAN) binaries and the null FastCGI responder
# (tests/bench/null_fcgi.c, the web stack's ceiling), then runs tools/bench:
# about 6 minutes, loopback only. The table is printed and saved in
# $(BENCH_OUT)/results.md (with results.json and the plot throughput.png).
BENCH_OUT ?= build/bench
build/bench_null_fcgi: tests/bench/null_fcgi.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(shell $(PKG_CONFIG) --libs fcgi 2>/dev/null || echo -lfcgi)

# build/rewind/wahook-drain: the drainer with libcurl's own copy of each request
# body (which it may resend: tests/bench/body_rewindable.c in place of
# cgi/drainer/body_once.c), for the bench's cost of refusing that resend;
# build/nonotify/wahook.fcgi: the responder without the ingest statement's
# NOTIFY, for the bench's cost of it
build/rewind/wahook-drain: tests/bench/body_rewindable.c cgi/drainer/body_once.h \
    $(SHARED_O) $(filter-out %/body_once.o,$(DRAINER_O)) $(NAMES_OBJ)
	@mkdir -p $(@D)
	$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(INC_drainer) $(LDFLAGS) -o $@ \
	    $(filter %.c %.o,$^) $(LIBS_DRAIN)

bench:
	@tools/deps bench
	$(MAKE) SAN= all build/bench_null_fcgi build/rewind/wahook-drain
	@mkdir -p build/nonotify
	python3 tests/bench/bench.py --strip-notify sql/statements/ingest.sql \
	    > build/nonotify/ingest.sql
	$(MAKE) SAN= B=build/nonotify INGEST_SQL=build/nonotify/ingest.sql \
	    build/nonotify/wahook.fcgi
	WAHOOK_BUILD=build tools/bench $(BENCH_OUT)

.PHONY: bench
