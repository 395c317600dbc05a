"""The README's complete Python snippets (each marked `<!-- tests/test_readme.py runs this block as written -->`)
run as written, imports included, in a fresh process."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return re.findall(r"<!-- tests/test_readme.py runs this block as written -->\n```python\n(.*?)```", f.read(), re.S)


def test_readme_has_the_five_snippets():
    blocks = python_blocks()
    assert any('ZooImputer("auto"' in b and "report()" in b for b in blocks)
    assert len(blocks) == 5 and any("ZooImputer(" in b for b in blocks) and any("model.fit(make_dataset" in b for b in blocks)
    assert any('ZooClassifier(\n    "misconv"' in b and "export(classifier" in b for b in blocks)
    assert any("complete(" in b and "SimpleImputer(" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_snippet_runs_as_written(index, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-c", python_blocks()[index]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_model_list_the_readme_prints_is_the_registry():
    import ast

    import keraszoo

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        printed = re.search(r"keraszoo\.list_models\(\)\s+# (\[.*?\])", f.read()).group(1)
    assert ast.literal_eval(printed) == keraszoo.list_models()
