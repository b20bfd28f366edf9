#!/bin/sh
# make_default_model.sh: the recipe of assets/models/cmif-tiny.gguf (run by
# `make default-model`). Everything is seeded, so the same machine type reproduces it.
#   1. corpus: 4200 runs of stories260K sampled by cmif's own engine (make_corpus.sh),
#      every 20th run held out;
#   2. `cmif train`: tokenizer (512-token byte-fallback BPE) and model, with checkpoints
#      (an interrupted build resumes where it stopped);
#   3. per-byte perplexity of the new model and of stories260K on the held-out stories.
# usage: make_default_model.sh CMIF OUT.gguf [WORKDIR]
# Environment: CMIF_SHARED (default ../shared) holds models/stories260K.gguf;
# CMIF_TRAIN_THREADS (default 2).
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 CMIF OUT.gguf [WORKDIR]" >&2
    exit 2
fi
CMIF=$1 OUT=$2 WORK=${3:-/tmp/cmif-corpus}
SHARED=${CMIF_SHARED:-../shared}
TEACHER=$SHARED/models/stories260K.gguf
THREADS=${CMIF_TRAIN_THREADS:-2}
HERE=$(dirname "$0")
[ -r "$TEACHER" ] || { echo "$0: $TEACHER not found (set CMIF_SHARED)" >&2; exit 1; }

start=$(date +%s)
sh "$HERE/make_corpus.sh" "$CMIF" "$TEACHER" "$WORK" 4200 2 0.8
corpus_done=$(date +%s)
echo "corpus: $(wc -c < "$WORK/train.txt") bytes of training text in $((corpus_done - start)) s"

nice -n 5 "$CMIF" train --corpus "$WORK/train.txt" --eval "$WORK/heldout.txt" --out "$OUT" \
    --vocab 512 --dim 64 --layers 5 --heads 8 --kv-heads 4 --ffn 172 --ctx 512 \
    --batch 4 --steps 3000 --lr 2e-3 --min-lr-frac 0.1 --warmup 100 --wd 0.1 --clip 1.0 \
    --seed 1 -t "$THREADS" --checkpoint "$WORK/train.ckpt" --checkpoint-every 100 --resume \
    --log-every 20 --eval-every 200 | tee "$WORK/train.log"
end=$(date +%s)
echo "training: $((end - corpus_done)) s; total $((end - start)) s"

"$CMIF" train --ppl "$WORK/heldout-stories.txt" -m "$OUT" -t 1 | tee "$WORK/ppl.txt"
"$CMIF" train --ppl "$WORK/heldout-stories.txt" -m "$TEACHER" -t 1 | tee -a "$WORK/ppl.txt"
