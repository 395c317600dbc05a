import io
from contextlib import redirect_stdout

from training import speed_models


def test_speed_models_prints_a_row_per_model_with_its_ratio_to_the_first():
    out = io.StringIO()
    with redirect_stdout(out):
        speed_models.main(["--models", "gain,g2lgn", "--rows", "256", "--features", "6", "--batch-size", "32", "--steps", "20", "--warmup-steps", "20", "--repeats", "1"])
    rows = [line for line in out.getvalue().splitlines() if line.startswith("| gain") or line.startswith("| g2lgn")]
    assert len(rows) == 2, out.getvalue()
    assert rows[0].endswith("| 1.00 |")
    assert float(rows[1].split("|")[2]) > 0


def test_images_reach_image_models_as_images_and_table_models_as_rows():
    out = io.StringIO()
    with redirect_stdout(out):
        speed_models.main(
            ["--models", "gain,g2lgn", "--image", "8", "--rows", "64", "--batch-size", "16", "--steps", "5", "--warmup-steps", "5", "--repeats", "1"]
        )
    assert "8x8x1 images" in out.getvalue()
    assert len([line for line in out.getvalue().splitlines() if line.startswith(("| gain", "| g2lgn"))]) == 2, out.getvalue()
