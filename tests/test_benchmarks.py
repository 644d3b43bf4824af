"""Keep the benchmark scripts working: a tiny run of each that checks what it prints."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script, *args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)  # the scripts make their own scratch databases
    result = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.benchmark
def test_the_active_learning_benchmark_runs_the_product_defaults_on_both_datasets(tmp_path):
    out = run("active_learning.py", "--dataset", "all", "--limit-train", "600", "--limit-test", "200", "--budget", "60",
              "--checkpoints", "20,40,60", "--seeds", "2", "--plot", str(tmp_path / "curve_{dataset}.png"))
    assert "product defaults: strategy margin, diversity on, refresh every 10 labels" in out
    assert "== banking77: pool 600" in out and "== clinc150: pool 600" in out and "(out-of-scope queries dropped)" in out
    assert "banking77, test split" in out and "clinc150, validation split" in out and "worst gap to random" in out
    assert (tmp_path / "curve_banking77.png").stat().st_size > 1000 and (tmp_path / "curve_clinc150.png").exists()


@pytest.mark.benchmark
def test_the_active_learning_benchmarks_fast_path_chooses_what_the_production_services_choose(tmp_path):
    out = run("active_learning.py", "--dataset", "banking77", "--limit-train", "600", "--limit-test", "100",
              "--check", "60")
    assert "banking77, default, 600 pool items, 60 labels: the same items in the same order" in out


@pytest.mark.benchmark
def test_the_active_learning_benchmark_goes_on_under_a_fine_tuned_champion(tmp_path):
    out = run("active_learning.py", "--path", "product", "--dataset", "banking77", "--limit-train", "400",
              "--limit-test", "200", "--budget", "150", "--seed-size", "50", "--batch", "25", "--checkpoints", "50,100,150",
              "--seeds", "1", "--champion-at", "100", "--strategies", "margin", "--refresh-pool", "3000",
              "--plot", str(tmp_path / "curve.png"))
    assert "champion v1 (fine-tuned on 100 labels) promoted, pool re-encoded" in out
    assert "same head, all labels, champion's embeddings" in out and "fast refresh" in out


@pytest.mark.benchmark
def test_the_find_similar_benchmark_runs_on_a_few_items(tmp_path):
    out = run("find_similar.py", "--items", "300", "--queries", "3",
              "--database-url", f"sqlite:///{tmp_path / 'similar.sqlite3'}")
    assert "first search (cold" in out and "similar to an item" in out and "similar to typed text" in out
    assert "(exact float32)" in out and "target p95 <= 300 ms" in out


@pytest.mark.benchmark
def test_the_data_manager_benchmark_times_every_filter_sort_and_search_and_prints_their_plans(tmp_path):
    out = run("data_manager.py", "--database-url", f"sqlite:///{tmp_path}/dm.sqlite3", "--items", "3000", "--repeat", "2")
    assert "fill 3,000 items" in out and "sort=-confidence" in out and "annotator=<one of 8>" in out
    assert "search  q='card'" in out and "| SEARCH labeller_item USING INDEX item_table_confidence_idx" in out
    assert "count  q='card'" in out and "worst first page p95" in out


@pytest.mark.benchmark
def test_the_span_active_learning_benchmark_runs_a_small_budget_and_a_few_fine_tune_steps(tmp_path):
    out = run("span_active_learning.py", "--limit-train", "200", "--limit-test", "60", "--budget", "80",
              "--seed-size", "20", "--batch", "20", "--eval-every", "40", "--seeds", "1",
              "--strategies", "random,margin_root", "--refresh-pool", "500", "--refresh-labelled", "100",
              "--finetune-epochs", "1", "--finetune-max-steps", "2", "--cache", str(tmp_path), timeout=300)
    assert "entity F1 (strict) on test against texts labelled" in out and "labels to reach random@budget" in out
    assert "fast refresh over 500 texts" in out and "float16 word vectors" in out
    assert "fine-tuned (max_steps" in out and "PER  F1" in out


@pytest.mark.benchmark
def test_the_span_refresh_benchmark_refreshes_a_small_stored_pool(tmp_path):
    out = run("span_refresh.py", "--pool", "600", "--unique", "120", "--labelled", "60", "--runs", "1", "--evidence-cost",
              "--cache", str(tmp_path), "--database-url", f"sqlite:///{tmp_path / 'spans.sqlite3'}")
    assert "stored 600 items" in out and "60 labelled" in out
    assert "refresh 1 with evidence:" in out and "over 540 open" in out and "peak memory allocated by a refresh" in out
    assert "refresh 1 without evidence:" in out and "evidence: refresh time with / without = " in out


@pytest.mark.benchmark
def test_the_predict_spans_benchmark_serves_a_head_and_a_fine_tuned_span_version_beside_classification(tmp_path):
    out = run("predict_spans.py", "--rounds", "1", "--intents", "10", "--per-intent", "5", "--span-train", "40",
              "--finetune-train", "8", "--data-dir", str(tmp_path), "--json", "predict_spans_test.json")
    assert "spans, fine-tuned: fine-tuned on 8 BTC tweets, 1 epoch" in out
    for name in ("classification", "spans ", "spans_finetuned"):
        assert f"  {name}" in out
    assert "span head / classification throughput:" in out and "span fine-tuned / classification throughput:" in out


@pytest.mark.benchmark
def test_the_refresh_scale_benchmark_refreshes_a_small_stored_pool_while_experts_are_served(tmp_path):
    out = run("refresh_scale.py", "--pool", "600", "--unique", "100", "--labelled", "60", "--runs", "1",
              "--experts", "1", "--think-ms", "50", "--cache", str(tmp_path),
              "--database-url", f"sqlite:///{tmp_path / 'scale.sqlite3'}")
    assert "stored 600 items with vectors" in out and "60 labelled" in out
    assert "refresh 1:" in out and "peak RSS" in out and "next item during refresh 1" in out
    assert "peak memory allocated by a refresh" in out


@pytest.mark.benchmark
def test_the_out_of_scope_benchmark_compares_every_signal_on_both_datasets(tmp_path):
    out = run("out_of_scope.py", "--limit", "700", "--few", "300", "--seeds", "1", "--held-out", "5",
              "--cache", str(tmp_path))
    for signal in ("maxprob", "energy", "knn", "mahalanobis", "maxprob+knn", "energy+knn", "oos_class"):
        assert f"| {signal} |" in out
    assert "| CLINC150 | 300 | maxprob+knn | 5-fold out-of-fold |" in out and "| Banking77, 5 intents unknown |" in out
    assert "oos | oos_label | val.csv in-scope |" in out and "| CLINC150 | 300 + 9 oos | oos_label | 5-fold out-of-fold |" in out
    assert "| Banking77, the 4 unknown intents never labelled |" in out


@pytest.mark.benchmark
def test_the_out_of_scope_variants_are_compared_on_validation_data_of_both_datasets(tmp_path):
    out = run("out_of_scope_variants.py", "--limit", "600", "--seeds", "1", "--cache", str(tmp_path))
    assert "| vote | distance k=10 | 1.0 | " in out and "| plain | centred distance k=50 | 3.0 | " in out
    assert "CLINC150 val.csv: drop, recall" in out and "Banking77 seed 100: drop, recall" in out
    assert "With an out-of-scope label" in out and "| class or rule, w = 1.0 | " in out
    assert "| Banking77 seed 100, unlabelled intents |" in out


@pytest.mark.benchmark
def test_the_out_of_scope_benchmark_scores_a_fine_tuned_versions_rule(tmp_path):
    # 1,800 rows: Banking77's fit split must hold out >= 100 validation texts, or ml.finetune
    # reads no rule at a 1-point budget and the Banking77 rows never print
    out = run("out_of_scope.py", "--finetuned", "--finetuned-datasets", "clinc150,banking77", "--limit", "1800",
              "--held-out", "5", "--finetune-epochs", "1", "--finetune-min-validation", "50", "--max-drops", "0.02",
              "--cache", str(tmp_path))
    assert "held out for early stopping and the rule" in out and "the product's rule reproduced from the split: yes" in out
    assert "| CLINC150 | " in out and "| 0.0100 | validation |" in out and "| 0.0200 | validation |" in out
    assert "| Banking77, 5 intents unknown |" in out and "chosen on validation: budget" in out
    assert "| test (product" in out


@pytest.mark.benchmark
def test_the_out_of_scope_benchmark_scores_a_version_fine_tuned_with_an_out_of_scope_label(tmp_path):
    out = run("out_of_scope.py", "--finetuned", "--oos-label", "--limit", "1800", "--finetune-epochs", "1",
              "--finetune-min-validation", "50", "--cache", str(tmp_path))
    assert "CLINC150 with the out-of-scope label: fine-tuned on" in out and "of 151 classes" in out
    assert "its rule: threshold" in out and "| validation | 0." in out and "| test | 0." in out


@pytest.mark.benchmark
def test_the_label_errors_benchmark_runs_both_parts_and_its_validation_on_small_slices(tmp_path):
    small = ["--limit-train", "500", "--limit-test", "150", "--seeds", "1", "--rates", "0.1", "--cache", str(tmp_path)]
    out = run("label_errors.py", *small, "--annotator-items", "150")
    assert "banking77: 500 training labels" in out and "clinc150: 500 training labels" in out
    assert "re-reviewed/corrupted" in out and "confusable  10%" in out and "uniform     10%" in out
    assert "annotator accuracy MAE" in out and "CROWDLAB" in out and "Dawid-Skene, model prior" in out
    out = run("label_errors.py", *small, "--validation", "--datasets", "clinc150", "--noise", "uniform")
    assert "clinc150 (validation): 500 flagged" in out and "low_self_confidence" in out and "val acc after re-review" in out
    out = run("label_errors.py", *small, "--validation", "--rounds", "2", "--datasets", "banking77", "--noise", "confusable",
              "--second-opinion", "0")
    assert "banking77: 400 training labels, 100 validation items" in out
    loads = [float(m.group(1)) for m in re.finditer(r"^banking77\s+confusable\s+10%\s+[12]\s.*\s(\d\.\d+)±", out, re.M)]
    assert len(loads) == 2 and loads[1] >= loads[0]  # round 2 re-reviews what round 1 did, and maybe more
    out = run("label_errors.py", *small, "--validation", "--rounds", "2", "--datasets", "banking77", "--noise", "confusable",
              "--second-opinion", "0.5")
    opinion = [float(m.group(1)) for m in re.finditer(r"^banking77\s+confusable\s+10%\s+[12]\s.*\s(\d\.\d+)±", out, re.M)]
    assert opinion[0] == loads[0] and opinion[1] >= loads[1]  # the same first audit; the second flags more, or as many


@pytest.mark.benchmark
def test_the_label_errors_benchmark_fine_tunes_versions_on_re_reviewed_and_clean_labels(tmp_path):
    out = run("label_errors.py", "--finetune", "--datasets", "banking77", "--noise", "uniform", "--rates", "0.1",
              "--seeds", "1", "--limit-train", "300", "--limit-test", "80", "--finetune-epochs", "1",
              "--finetune-conditions", "reviewed,clean", "--cache", str(tmp_path))
    assert "banking77: 300 training labels" in out and "uniform 10% seed 0: 30 corrupted" in out
    assert "fine-tuned on reviewed labels: test accuracy" in out and "fine-tuned on clean    labels" in out
    assert "fine-tuned on noisy" not in out and "s/step" in out and "gap clean − re-reviewed (points)" in out


def test_the_label_errors_benchmark_names_an_unknown_fine_tune_condition():
    result = subprocess.run([sys.executable, "benchmarks/label_errors.py", "--finetune", "--finetune-conditions", "noisy,dirty"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--finetune-conditions: unknown dirty" in result.stderr


@pytest.mark.benchmark
def test_the_span_fine_tune_dev_search_stores_checkpoints_chooses_on_dev_and_scores_test(tmp_path):
    common = ("--out", str(tmp_path), "--limit-eval", "20")
    run("span_finetune_dev.py", "run", "--name", "tiny", "--limit-random", "16", "--epochs", "2", "--casing", *common,
        timeout=900)
    assert {p.name for p in (tmp_path / "tiny").iterdir()} >= {"epoch1.pt", "epoch2.pt", "dev_epoch2_avg.npz", "result.json"}
    assert "best on dev: ('tiny'" in run("span_finetune_dev.py", "choose", *common)
    out = run("span_finetune_dev.py", "test", "--name", "tiny", "--epoch", "2", "--average", "--o-scale", "0.5", *common)
    assert "test entity F1" in out and "averaged with the one before" in out
    out = run("span_finetune_dev.py", "soup", "--names", "tiny,tiny", "--epoch", "2", *common)
    assert "epoch 2 of 2 runs, stored" in out and (tmp_path / "soup_tiny+tiny" / "dev_epoch1.npz").exists()


@pytest.mark.benchmark
def test_the_drift_alarms_benchmark_prints_false_alarms_and_detections_on_both_datasets(tmp_path):
    out = run("drift_alarms.py", "--limit", "400", "--pool", "200", "--traffic", "60", "--windows", "3", "--seeds", "1",
              "--labels", "50", "--sizes", "50", "--cache", str(tmp_path))
    assert "banking77 seed 0" in out and "clinc150 seed 0" in out
    assert "false alarms" in out and "other-dataset" in out and "tweets" in out
