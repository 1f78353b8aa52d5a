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
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -MMD -MP \
       $(shell $(PKG_CONFIG) --cflags fcgi json-c libcrypto libpq libcurl 2>/dev/null)

B = build
ifeq ($(SAN),1)
B = build/san
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

LIBS_FCGI  = $(shell $(PKG_CONFIG) --libs fcgi json-c libcrypto libpq 2>/dev/null || echo -lfcgi -ljson-c -lcrypto -lpq)
LIBS_DRAIN = $(shell $(PKG_CONFIG) --libs libcurl json-c libpq 2>/dev/null || echo -lcurl -ljson-c -lpq)

# modules; each cgi/X.c has cgi/X.h
COMMON_OBJS = log env
FCGI_OBJS   = wahook_fcgi http config verify payload store
DRAIN_OBJS  = drain

UNIT_TESTS  = test_verify test_payload test_config test_log test_http

obj = $(patsubst %,$(B)/obj/%.o,$(1))

all: $(B)/wahook.fcgi $(B)/wahook-drain

$(B)/obj/%.o: cgi/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# the ingest statement is kept readable in sql/; store.c includes it as a string
# (comment lines dropped, and the trailing semicolon: PQprepare takes one statement)
$(B)/gen/ingest_sql.h: sql/ingest.sql
	@mkdir -p $(@D)
	sed -e '/^--/d' -e 's/;$$//' -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@

$(B)/obj/store.o: $(B)/gen/ingest_sql.h
$(B)/obj/store.o: ALL_CFLAGS += -I$(B)/gen

$(B)/obj/test_%.o: tests/unit/test_%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Icgi $(shell $(PKG_CONFIG) --cflags cmocka) -c $< -o $@

$(B)/wahook.fcgi: $(call obj,$(COMMON_OBJS) $(FCGI_OBJS))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_FCGI)

$(B)/wahook-drain: $(call obj,$(COMMON_OBJS) $(DRAIN_OBJS))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_DRAIN)

# unit tests link every module but the mains
UNIT_LINK = $(call obj,$(COMMON_OBJS) $(filter-out wahook_fcgi,$(FCGI_OBJS)))
$(B)/test_%: $(B)/obj/test_%.o $(UNIT_LINK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_FCGI) $(shell $(PKG_CONFIG) --libs cmocka)

units: $(patsubst %,$(B)/%,$(UNIT_TESTS))

deps:
	@scripts/deps

check: deps
	$(MAKE) all units
	WAHOOK_BUILD=$(B) python3 tests/run.py $(TESTS)

run: deps
	$(MAKE) all
	scripts/run

clean:
	rm -rf build

.PHONY: all units deps check run clean
-include $(wildcard $(B)/obj/*.d)
