import io
from contextlib import redirect_stdout

from training import speed_models


def test_speed_models_prints_a_row_per_model_with_its_ratio_to_the_first():
    out = io.StringIO()
    with redirect_stdout(out):
        speed_models.main(["--models", "gain,g2lgn", "--rows", "256", "--features", "6", "--batch-size", "32", "--steps", "20", "--repeats", "1"])
    rows = [line for line in out.getvalue().splitlines() if line.startswith("| gain") or line.startswith("| g2lgn")]
    assert len(rows) == 2, out.getvalue()
    assert rows[0].endswith("| 1.00 |")
    assert float(rows[1].split("|")[2]) > 0
