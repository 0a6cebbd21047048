"""mkdocs hook: `{{ notebook("notebooks/x.py") }}` in a page is replaced by the
jupytext percent-format script, markdown cells as markdown and code cells as
markdown-exec blocks, so the notebook is executed when the site is built."""

import os
import re
from pathlib import Path

# The executed examples are compile-bound: build them with XLA:CPU's older loop-fusion code
# generator, which compiles about 45% faster (docs/design.md, "Test suite time"). Set
# before any example starts JAX's backend; the user's own XLA_FLAGS setting wins.
if "--xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_use_fusion_emitters=false"
    ).strip()

ROOT = Path(__file__).resolve().parent.parent
_MARK = re.compile(r'\{\{\s*notebook\("([^"]+)"\)\s*\}\}')


def _convert(path: Path, session: str) -> str:
    text = path.read_text()
    if text.startswith("# ---"):  # jupytext header
        end = text.index("# ---", 5)
        text = text[text.index("\n", end) + 1 :]
    cells = re.split(r"^# %%(.*)$", text, flags=re.M)
    out = []
    if cells[0].strip():
        cells = ["", *cells]
    for tag, body in zip(cells[1::2], cells[2::2], strict=True):
        if "[markdown]" in tag:
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines()]
            out.append("\n".join(lines).strip())
        elif body.strip():
            out.append(
                f'```python exec="on" session="{session}" source="above" result="text"\n'
                f"{body.strip()}\n```"
            )
    return "\n\n".join(out) + "\n"


def on_page_markdown(markdown, page, config, files):
    def repl(m):
        return _convert(ROOT / m.group(1), session=Path(m.group(1)).stem)

    return _MARK.sub(repl, markdown)
