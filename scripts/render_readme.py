"""Copy the rendered benchmark tables into README.md and benchmarks/README.md between
<!-- results:NAME --> markers (NAME: a file under benchmarks/results/, without .md).

    python scripts/render_readme.py

README figures come only from benchmarks/results/*.md, which the benchmark scripts write. Headings inside
a results file become bold lines, so a rendered block never adds a section to the page it lands in.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")


def _block(name: str) -> str:
    table = (ROOT / "benchmarks" / "results" / f"{name}.md").read_text().strip()
    lines = []
    for line in table.splitlines():
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading and len(heading.group(1)) == 1:
            continue  # the file's own title
        lines.append(f"**{heading.group(2)}**" if heading else line)
    return "\n".join(lines).strip()


def main() -> None:
    for page in PAGES:
        text = page.read_text()
        text = re.sub(
            r"<!-- results:([\w/-]+) -->.*?<!-- /results:\1 -->",
            lambda m: f"<!-- results:{m.group(1)} -->\n{_block(m.group(1))}\n<!-- /results:{m.group(1)} -->",
            text,
            flags=re.S,
        )
        page.write_text(text)


if __name__ == "__main__":
    main()
