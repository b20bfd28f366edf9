#!/bin/sh
# Runs every libFuzzer target built by `make fuzz` (BUILD/fuzz/fuzz_*) for SECONDS each,
# from the repository root, one after the other, and prints each one's run count.
#   sh tests/fuzz.sh BUILD SECONDS     run (exit 1 on a finding: the input is kept in
#                                      BUILD/fuzz-artifacts/, the log tail is printed)
#   sh tests/fuzz.sh --check           exit 0 when clang can build a libFuzzer target here
# The corpora grow in BUILD/fuzz-corpus/NAME across runs; seeds are written on the first.
# FUZZ_ARGS adds libFuzzer options (e.g. -jobs=2).
set -u
if [ "${1:-}" = --check ]; then
  command -v clang >/dev/null 2>&1 || exit 1
  t=$(mktemp -d) || exit 1
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$t/f.c"
  clang -fsanitize=fuzzer,address,undefined "$t/f.c" -o "$t/f" >/dev/null 2>&1; rc=$?
  rm -rf "$t"
  exit $rc
fi
B=${1:?usage: tests/fuzz.sh BUILD SECONDS | --check}
T=${2:?usage: tests/fuzz.sh BUILD SECONDS | --check}
SHARED=${CMIF_SHARED:-../shared}
export CMIF_SHARED="$SHARED"

seed() {   # seed NAME: a few valid inputs for the target's corpus
  d=$1
  case $(basename "$d") in
    fuzz_gguf)
      [ -f "$SHARED/models/stories260K.gguf" ] && cp "$SHARED/models/stories260K.gguf" "$d/" ;;
    fuzz_tok)
      printf '\000Hello world, this is a test.' >"$d/1"
      printf '\001 leading  spaces\tand\nlines' >"$d/2"
      printf '\042<s>[INST] hi [/INST]</s><|eot_id|>' >"$d/3"
      printf '\020caf\303\251 \346\227\245\346\234\254 \360\237\230\200 \377\376' >"$d/4" ;;
    fuzz_template)
      printf "\022You are helpful.\000What is 2+2?" >"$d/1"
      printf "{%% for message in messages %%}<|start_header_id|>{{ message['role'] }}<|end_header_id|>{%% endfor %%}" >"$d/2"
      printf "{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{%% endfor %%}" >"$d/3"
      printf '\024<<SYS>>\000[INST] hello [/INST]' >"$d/4" ;;
    fuzz_script)
      printf '# a script\nhello there\n/eps 2\na long \\\nmessage\n\n/quit\n' >"$d/1"
      printf 'line one\r\nline two \\\r\n\\\n' >"$d/2" ;;
  esac
}

fail=0
for bin in "$B"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus="$B/fuzz-corpus/$name"
  art="$B/fuzz-artifacts/$name/"
  if [ ! -d "$corpus" ]; then mkdir -p "$corpus"; seed "$corpus"; fi
  mkdir -p "$art"
  log="$B/fuzz-artifacts/$name.log"
  maxlen=4096
  [ "$name" = fuzz_gguf ] && maxlen=65536
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$T" -max_len=$maxlen -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$art" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "$name: FINDING (exit $rc) after ${runs:-?}; input in $art, log $log:"
    tail -30 "$log"
    fail=1
  else
    echo "$name: ${runs:-? runs}, no finding (corpus $(ls "$corpus" | wc -l) inputs)"
  fi
done
[ $fail -eq 0 ] || exit 1
