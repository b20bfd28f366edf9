#!/bin/sh
# make_corpus.sh: build the training corpus for cmif's default model from text cmif itself
# generates. Stories are sampled from stories260K (MIT, karpathy/tinyllamas) by cmif's own
# engine, split at story boundaries, and most are wrapped as ChatML dialogues
# ("Tell me a story about X and Y." -> story) whose request names a character and a noun
# the story really contains. Every run is seeded, so the corpus is reproducible.
#
# usage: make_corpus.sh CMIF MODEL OUTDIR [RUNS] [JOBS] [TEMP]
# writes OUTDIR/train.txt, OUTDIR/heldout.txt (dialogues, documents separated by blank
# lines) and OUTDIR/heldout-stories.txt (the held-out stories alone, for perplexity).
# Every 20th run (seed % 20 == 0) is held out.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 CMIF MODEL OUTDIR [RUNS] [JOBS] [TEMP]" >&2
    exit 2
fi
CMIF=$1 MODEL=$2 OUT=$3 RUNS=${4:-3000} JOBS=${5:-2} TEMP=${6:-0.8}
[ -x "$CMIF" ] || { echo "$0: $CMIF is not an executable" >&2; exit 2; }
[ -r "$MODEL" ] || { echo "$0: cannot read $MODEL" >&2; exit 2; }

mkdir -p "$OUT/raw"
export CMIF MODEL OUT TEMP
# One run per seed: a 512-position context (stories260K's trained length) from BOS alone.
# A run that already exists is kept, so an interrupted build resumes.
seq 1 "$RUNS" | xargs -P "$JOBS" -I{} sh -c '
    f="$OUT/raw/{}.txt"
    [ -s "$f" ] && exit 0
    "$CMIF" generate -m "$MODEL" -p "" -n -1 -c 512 --temp "$TEMP" --top-k 0 --top-p 1 \
        --min-p 0 -s {} -t 1 --device cpu > "$f.tmp" 2>/dev/null && mv "$f.tmp" "$f"'

perl "$(dirname "$0")/wrap_corpus.pl" "$OUT/raw" "$RUNS" "$OUT"
