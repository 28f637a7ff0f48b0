"""The stage table: consistent with itself, with the workspace, with the fingerprints of earlier builds, and with
the README and the CLI that are generated from it. Pure: no model is built."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sentimon.compression import STAGES
from sentimon.compression.pipeline import STAGE_NAMES, fingerprint_sections, stage_list_markdown
from sentimon.compression.workspace import Workspace


def test_stages_are_unique_and_read_only_earlier_stages():
    assert len(set(STAGE_NAMES)) == len(STAGES)
    for position, stage in enumerate(STAGES):
        assert set(stage.needs) <= set(STAGE_NAMES[:position]), stage.name
    assert not STAGES[-1].cached, "the last stage's info is the build summary: it must run on every build"


def test_every_declared_artifact_is_a_workspace_path_inside_its_stage_folder(tmp_path: Path):
    ws = Workspace(tmp_path)
    for stage in STAGES:
        for accessor in stage.writes:
            value = getattr(ws, accessor)
            path = value if isinstance(value, Path) else value("x")
            assert path.is_relative_to(ws.stage_dir(stage.name)), (stage.name, accessor)


def test_fingerprints_match_the_sections_earlier_builds_were_stamped_with():
    # Work directories built before the table existed resume only if every stage keeps its sections.
    expected = {
        "data": ("data",),
        "teacher": ("data", "teacher"),
        "student": ("data", "student", "teacher"),
        "static": ("data", "static", "teacher"),
        "prune": ("data", "prune", "student", "teacher"),
        "export": ("data", "export", "prune", "static", "student", "teacher"),
        "evaluate": ("data", "export", "prune", "static", "student", "teacher"),
    }
    assert {s.name: fingerprint_sections(s) for s in STAGES if s.cached} == expected


def test_readme_stage_list_is_generated_from_the_table():
    listing = stage_list_markdown()
    items = re.findall(r"^\d+\. \*\*(\w+)\*\*", listing, flags=re.M)
    assert tuple(items) == STAGE_NAMES
    for line in listing.splitlines():
        # a continuation line that looks like a list marker would split an item in two
        assert line.startswith(tuple(f"{n}. " for n in range(1, len(STAGES) + 1))) or (
            line.startswith("   ") and not re.match(r"\s+([*+-]|\d+[.)])(\s|$)", line)
        ), line


def test_cli_offers_the_table_stages():
    import typer.main

    from sentimon.cli import app

    command = typer.main.get_command(app).commands["compress"]
    restart_from = next(p for p in command.params if p.name == "restart_from")
    assert restart_from.metavar == "[" + "|".join(STAGE_NAMES) + "]"
    assert command.help is not None and " -> ".join(STAGE_NAMES) in command.help


def test_the_table_and_the_cli_load_without_torch():
    code = "import sys, sentimon.cli.compress, sentimon.compression; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
