"""Copy the rendered benchmark tables into README.md between <!-- results:NAME --> markers.

    python benchmarks/render_readme.py

README figures come only from benchmarks/results/*.md, which the benchmark scripts write.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()

    def fill(match: re.Match) -> str:
        name = match.group(1)
        table = (ROOT / "benchmarks" / "results" / f"{name}.md").read_text().strip()
        body = "\n".join(line for line in table.splitlines() if not line.startswith("# "))
        return f"<!-- results:{name} -->\n{body.strip()}\n<!-- /results:{name} -->"

    text = re.sub(r"<!-- results:([\w/-]+) -->.*?<!-- /results:\1 -->", fill, text, flags=re.S)
    readme.write_text(text)


if __name__ == "__main__":
    main()
