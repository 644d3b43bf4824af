"""The fine-tune plan: a validation split too small to stop on is trained on, for fixed epochs."""
from ml.finetune import FineTuneConfig, fold_small_validation


def test_a_small_validation_split_is_trained_on_for_a_fixed_number_of_epochs():
    config = FineTuneConfig(epochs=3, min_validation=500, small_data_epochs=5)
    texts, ids, val_texts, val_ids, planned = fold_small_validation(["a", "b"], [0, 1], ["c"], [1], config)
    assert (texts, ids, val_texts, val_ids) == (["a", "b", "c"], [0, 1, 1], [], [])
    assert planned.epochs == 5 and config.epochs == 3  # the caller's config is not changed


def test_a_large_enough_validation_split_keeps_early_stopping():
    config = FineTuneConfig(epochs=3, min_validation=2)
    planned = fold_small_validation(["a"], [0], ["b", "c"], [0, 1], config)
    assert planned == (["a"], [0], ["b", "c"], [0, 1], config)
