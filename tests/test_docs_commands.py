"""Every command the README and docs/*.md show in a fenced block still parses: each
`python -m synthmed_core ...` and `python -m jobs ...` line goes through the real argument
parser (options, choices and sub-verbs checked; nothing is run), and every script they name
exists. A renamed option or verb fails here, not in a new user's shell."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import jobs._cli
import synthmed_core.cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PARSERS = {"synthmed_core": synthmed_core.cli.build_parser, "jobs": jobs._cli.build_parser}


def fenced_lines(page: Path) -> list[str]:
    """The shell lines of a page's ```bash blocks, continuations joined, comments dropped."""
    lines, inside, held = [], False, ""
    for raw in page.read_text().splitlines():
        if raw.startswith("```"):
            inside = raw.strip() in ("```bash", "```sh", "```console")
            continue
        if not inside:
            continue
        line = held + raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else held
        if line.endswith("\\"):
            held = line[:-1] + " "
            continue
        held = ""
        if line.strip():
            lines.append(line.strip())
    return lines


def commands() -> list[tuple[str, str, list[str]]]:
    out = []
    for page in PAGES:
        for line in fenced_lines(page):
            m = re.match(r"^(?:\S+/)?python3? -m (synthmed_core|jobs)\s+(.*)$", line)
            if m and "..." not in line:  # `...`: an elided example, not a command
                out.append((page.name, m.group(1), shlex.split(m.group(2))))
    return out


COMMANDS = commands()


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 40, [c[0] for c in COMMANDS]


@pytest.mark.parametrize("page,program,argv", COMMANDS,
                         ids=[f"{p}:{prog} {' '.join(a)[:60]}" for p, prog, a in COMMANDS])
def test_a_documented_command_parses(page, program, argv):
    parser = PARSERS[program]()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse's way of saying no (2) or --help (0)
        assert exc.code == 0, f"{page}: `python -m {program} {shlex.join(argv)}` does not parse"


def test_every_script_the_pages_run_exists():
    missing = []
    for page in PAGES:
        for line in fenced_lines(page):
            for word in shlex.split(line, comments=True):
                if re.match(r"^scripts/[\w./-]+\.(sh|py)$", word) and not (ROOT / word).is_file():
                    missing.append(f"{page.name}: {word}")
    assert not missing
