from dgslm.training.logger import format_scalars


def test_console_values_keep_small_learning_rates_visible():
    line = format_scalars({"num_updates": 12000, "loss": 7.10449, "lr": 0.000129099, "gnorm": 0.0})
    assert line == "num_updates 12000 | loss 7.104 | lr 0.000129 | gnorm 0"
