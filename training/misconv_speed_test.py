"""The Table 2 runner times both layers on every configuration and writes its table."""
from training import misconv_speed


def test_the_speed_runner_times_every_configuration(tmp_path):
    output = tmp_path / "speed.md"
    rows = misconv_speed.main(["--repeats", "2", "--warmup", "1", "--output", str(output)])  # 2: a standard deviation
    assert [(r["size"], r["batch"]) for r in rows] == [(s, b) for s, _, _ in misconv_speed.CONFIGS for b in misconv_speed.BATCHES]
    assert all(r["conv_mean"] > 0 and r["misconv_mean"] > 0 and r["ratio"] == r["misconv_mean"] / r["conv_mean"] for r in rows)
    text = output.read_text()
    assert "| 64x64x3 | 32x32 | 64 |" in text and text.count("\n| ") == 1 + len(rows)
