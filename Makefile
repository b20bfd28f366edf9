# cmif — confidential terminal chat for local Llama-family models.
# `make run` and `make test` are the two commands a person needs (see README.md).

CC      ?= cc
BUILD   ?= build
WERROR  ?= -Werror
OPT     ?= -O2
SAN     ?=
CFLAGS_COMMON = -std=c11 $(OPT) -g -Wall -Wextra $(WERROR) -D_GNU_SOURCE -pthread -I. \
                $(shell pkg-config --cflags ncursesw 2>/dev/null) $(SAN)
LDLIBS  = $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw) -lreadline \
          -lsodium -lopenblas -lm -lpthread -ldl
CMOCKA  = -lcmocka

DEB_PKGS = build-essential pkg-config libncurses-dev libreadline-dev libopenblas-dev libsodium-dev \
           libclblast-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libcmocka-dev tmux

# `make fuzz` only: clang and its runtime libraries (libFuzzer, ASan, UBSan).
FUZZ_PKGS = clang libclang-rt-dev

# Files named *_avx2.c / *_avx512.c are compiled for that ISA only and chosen at run time.
AVX2_FLAGS   = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -mavx512vnni

LIB_SRCS  = $(filter-out app/main.c,$(wildcard core/*.c gpu/*.c ui/*.c app/*.c app/train/*.c))
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/cl_kernels.o $(BUILD)/gen/public_words.o
TOOL_LIB_SRCS = $(filter-out %_main.c,$(wildcard tests/tools/*.c))
TOOL_LIB_OBJS = $(TOOL_LIB_SRCS:%.c=$(BUILD)/%.o)
TOOL_BINS = $(patsubst tests/tools/%_main.c,$(BUILD)/tools/%,$(wildcard tests/tools/*_main.c))
TEST_SRCS = $(wildcard tests/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
BENCH_SRCS = $(wildcard tests/bench/*.c)
BENCH_BIN = $(BUILD)/bench/cmif-bench
CL_SRCS   = $(sort $(wildcard gpu/kernels/*.cl))

.PHONY: all run test check-asan bench bench-deps deps clean tests tools default-model format \
        fuzz fuzz-deps fuzz-bins fuzz-smoke
.DEFAULT_GOAL := all

all: $(BUILD)/cmif

# --- dependencies --------------------------------------------------------------------
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "cmif: installing$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "cmif: missing Debian packages. Run as root:"; \
	    echo "  apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"

# The fuzzing build (`make fuzz` sets FUZZING=1): clang, whose warnings differ from the
# usual cc's (so no -Werror). gpu/ uses GCC's CPU-feature builtins that clang lacks: it is
# built by cc, uninstrumented (no fuzz target reaches the decoder).
ifeq ($(FUZZING),1)
CC     := clang
OPT    := -O1
WERROR :=
SAN    := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
          -fno-sanitize-recover=undefined
$(BUILD)/gpu/%.o: CC := cc
$(BUILD)/gpu/%.o: SAN :=
endif

# --- library and binary --------------------------------------------------------------
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(if $(findstring _avx512,$<),$(AVX512_FLAGS),$(if $(findstring _avx2,$<),$(AVX2_FLAGS))) -MMD -MP -c $< -o $@

# OpenCL kernels are embedded in the binary as C strings at build time.
$(BUILD)/gen/cl_kernels.c: $(CL_SRCS) tests/tools/embed_cl.sh
	@mkdir -p $(dir $@)
	sh tests/tools/embed_cl.sh $(CL_SRCS) > $@

$(BUILD)/gen/cl_kernels.o: $(BUILD)/gen/cl_kernels.c
	$(CC) $(CFLAGS_COMMON) -c $< -o $@

# The public word list of `--sanitize auto` is embedded the same way.
$(BUILD)/gen/public_words.c: assets/public-words.txt tests/tools/embed_words.sh
	@mkdir -p $(dir $@)
	sh tests/tools/embed_words.sh assets/public-words.txt > $@

$(BUILD)/gen/public_words.o: $(BUILD)/gen/public_words.c
	$(CC) $(CFLAGS_COMMON) -c $< -o $@

$(BUILD)/libcmif.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cmif: $(BUILD)/app/main.o $(BUILD)/libcmif.a
	$(CC) $(CFLAGS_COMMON) -o $@ $^ $(LDLIBS)

# --- test tools, tests, benchmarks ---------------------------------------------------
$(BUILD)/libtesttools.a: $(TOOL_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^ $(if $(TOOL_LIB_OBJS),,$(BUILD)/gen/cl_kernels.o)

$(BUILD)/tools/%: $(BUILD)/tests/tools/%_main.o $(BUILD)/libtesttools.a $(BUILD)/libcmif.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libtesttools.a $(BUILD)/libcmif.a
	$(CC) $(CFLAGS_COMMON) -o $@ $^ $(CMOCKA) $(LDLIBS)

$(BENCH_BIN): $(BENCH_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libtesttools.a $(BUILD)/libcmif.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^ $(LDLIBS)

tools: $(TOOL_BINS)
tests: $(BUILD)/cmif $(TOOL_BINS) $(TEST_BINS)

# --- the two commands ----------------------------------------------------------------
run: deps $(BUILD)/cmif
	./$(BUILD)/cmif $(ARGS)

test: deps
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory fuzz-smoke
	@BUILD=$(BUILD) sh tests/run.sh

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" tests
	@BUILD=build-asan CMIF_ASAN=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run.sh

# --- fuzzing: libFuzzer targets tests/fuzz_*.c over a clang build of the library with
# ASan and UBSan (build-fuzz). FUZZ_TIME: seconds per target (`make fuzz FUZZ_TIME=600`).
FUZZ_BUILD = build-fuzz
FUZZ_SRCS  = $(wildcard tests/fuzz_*.c)
FUZZ_BINS  = $(FUZZ_SRCS:tests/%.c=$(BUILD)/fuzz/%)
FUZZ_TIME ?= 60

$(BUILD)/fuzz/%: $(BUILD)/tests/%.o $(BUILD)/libcmif.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) FUZZING=1 fuzz-bins
	@sh tests/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# Part of `make test`: each target for a few seconds, when clang with libFuzzer is here.
fuzz-smoke:
	@if sh tests/fuzz.sh --check; then \
	  $(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) FUZZING=1 fuzz-bins && \
	  sh tests/fuzz.sh $(FUZZ_BUILD) 5; \
	else \
	  echo "fuzz smoke run: SKIPPED (no clang with libFuzzer; make fuzz-deps installs $(FUZZ_PKGS))"; \
	fi

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/cmif $(BENCH_BIN) $(TOOL_BINS)
	./$(BENCH_BIN) $(BENCH_ARGS)

# llama.cpp for the bench's same-run comparison and the e2e compatibility test: npm's
# node-llama-cpp ships prebuilt CPU binaries. Installed under build/llamacpp, never committed.
bench-deps:
	npm install --no-audit --no-fund --prefix build/llamacpp node-llama-cpp

# Reproduces assets/models/cmif-tiny.gguf from scratch: corpus sampled from
# ../shared/models/stories260K.gguf by cmif itself, tokenizer and model trained by
# `cmif train` (recipe and seeds in tests/tools/make_default_model.sh, results in
# assets/models/README.md). CMIF_CORPUS sets the work directory (kept out of the repo).
default-model: $(BUILD)/cmif
	sh tests/tools/make_default_model.sh $(BUILD)/cmif assets/models/cmif-tiny.gguf \
	  $(or $(CMIF_CORPUS),/tmp/cmif-corpus)

format:
	clang-format -i $(wildcard app/*.[ch] app/train/*.[ch] core/*.[ch] gpu/*.[ch] ui/*.[ch] tests/*.c tests/tools/*.[ch] tests/bench/*.[ch])

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
