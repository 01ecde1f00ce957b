#!/usr/bin/env bash
# Prints the generated tables of experiments/results/weak_ksdd.md from the run
# folders of its ablation runs. Usage: experiments/results/weak_ksdd_tables.sh RUNS
# where RUNS/<name>/weak_ksdd/<stamp>/ are the runs made by (from the repository
# root, --data-dir pointing at the datasets):
#   defects-jax weak_ksdd --preset cpu_small --out RUNS/<name> --no-progress [--set ...]
# with <name> and settings:
#   lr01: (none)                    unfreeze: freeze_in_stage2=False
#   rotate: rotate=True             skip: skip_stage1=True
#   n5 / n10: num_positive=5 / 10   n5_skip / n10_skip: the same + skip_stage1=True
#   ref_s1, unfreeze_s1, rotate_s1: seed=1 (+ the setting)
#   base: stage1_lr=0.1 (the paper's stage-1 learning rate)
#   s1_lr01: stage2_iters=0, stage3_iters=0 (stage 1 alone, 750 iterations)
#   first20_0.1 / first20_0.01: stage1_lr=0.1 / 0.01, stage1_iters=20, log_every=1,
#     stage2_iters=0, stage3_iters=0 (stage 1 alone, every update logged)
# (The runs in the results file were made at commit 8d30f6f, where cpu_small's
# stage-1 learning rate was still 0.1, so they passed --set stage1_lr=0.01.)
set -euo pipefail
runs=${1:?usage: $0 RUNS}
d() { ls -d "$runs/$1"/weak_ksdd/* | tail -1; }
have() { compgen -G "$runs/$1/weak_ksdd/*" > /dev/null; }
compare() { python -m defects_jax.cli compare "$@"; }
concat="Detection over the concatenated test folds"
cols="AP,FP@bestF1,FN@bestF1,FP@100%recall,region AP (heat map),region chance"

printf "### %s\n\n" "Table 5 switches (seed 0): concatenated test folds"
compare "$(d lr01)" "$(d unfreeze)" "$(d rotate)" "$(d skip)" "$(d base)" \
  --labels "frozen in stage 2 (reference),unfrozen,random rotation,without LNet training,paper stage-1 lr 0.1" \
  --table "$concat" --columns "$cols"
echo
printf "### %s\n\n" "Table 5 switches (seed 0): mean over folds"
compare "$(d lr01)" "$(d unfreeze)" "$(d rotate)" "$(d skip)" "$(d base)" \
  --labels "frozen in stage 2 (reference),unfrozen,random rotation,without LNet training,paper stage-1 lr 0.1" \
  --table "Per fold" --row -1 --columns "AP,FP@100%recall,region AP,Q+ end of stage 1,Q- end of stage 1" --fact ""
if have ref_s1 && have unfreeze_s1 && have rotate_s1; then
  echo
  printf "### %s\n\n" "Table 5 switches, seed 1 (other folds, other initialisation): concatenated test folds"
  compare "$(d ref_s1)" "$(d unfreeze_s1)" "$(d rotate_s1)" \
    --labels "frozen in stage 2 (reference),unfrozen,random rotation" --table "$concat" --columns "$cols"
  echo
  printf "### %s\n\n" "Table 5 switches, seed 1: mean over folds"
  compare "$(d ref_s1)" "$(d unfreeze_s1)" "$(d rotate_s1)" \
    --labels "frozen in stage 2 (reference),unfrozen,random rotation" \
    --table "Per fold" --row -1 --columns "AP,FP@100%recall,region AP,LNet collapsed" --fact ""
fi
echo
printf "### %s\n\n" "Figure 7: with and without LNet training (seed 0): concatenated test folds"
compare "$(d n5)" "$(d n5_skip)" "$(d n10)" "$(d n10_skip)" "$(d lr01)" "$(d skip)" \
  --labels "5 positives with LNet training,5 without,10 with,10 without,30 with,30 without" \
  --table "$concat" --columns "AP,FP@bestF1,FN@bestF1,FP@100%recall,region AP (heat map)"
echo
printf "### %s\n\n" "Figure 7 (seed 0): mean over folds"
compare "$(d n5)" "$(d n5_skip)" "$(d n10)" "$(d n10_skip)" "$(d lr01)" "$(d skip)" \
  --labels "5 with,5 without,10 with,10 without,30 with,30 without" \
  --table "Per fold" --row -1 --columns "AP,FP@100%recall,region AP" --fact ""
echo
printf "### %s\n\n" "Stage 1 alone: Q+ / Q- before each of the first updates, lr 0.1 (paper)"
python -m defects_jax.experiments.weak_ksdd q_trace "$(d first20_0.1)" 8
echo
printf "### %s\n\n" "The same at lr 0.01"
python -m defects_jax.experiments.weak_ksdd q_trace "$(d first20_0.01)" 8
