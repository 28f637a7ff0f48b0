"""`sentimon models list | show | register | promote | rollback | history`: the catalogue of names `--model`
accepts, and the registry of immutable versions with their `champion` / `candidate` aliases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from sentimon.cli.common import console, out, settings_of

if TYPE_CHECKING:
    from sentimon.inference.registry import Registry

models_app = typer.Typer(
    help="Model bundles (built by `sentimon compress`) and the registry of their versions.", no_args_is_help=True
)


def _registry(ctx: typer.Context, mirror: bool = False) -> Registry:
    """The settings' registry; ``mirror``: with the Redis client that alias changes are mirrored to."""
    from sentimon.inference import registry

    settings = settings_of(ctx)
    redis = None
    if mirror:
        from sentimon.infra.redis_client import connect

        redis = connect(settings.stack)
    return registry.from_settings(settings, redis)


def _resolve(ctx: typer.Context, name: str, models_dir: Path) -> Path:
    from sentimon.inference.registry import is_ref

    if is_ref(name) and not Path(name).is_dir():
        reg = _registry(ctx)
        try:
            return reg.path_of(name)
        finally:
            reg.close()
    path = Path(name)
    return path if path.is_dir() else models_dir / name


def _entry(name: str, path: Path) -> dict[str, Any]:
    """One row of the catalogue: every name `--model` accepts (built-in lexicon, cascades, bundles)."""
    from importlib.metadata import version

    from sentimon.compression.report import mean_metric
    from sentimon.inference.bundle import BundleError, read_manifest
    from sentimon.inference.cascade import CASCADE_FILE, read_cascade

    if name == "vader":
        return {"name": name, "kind": "lexicon", "version": version("vaderSentiment"), "path": None,
                "about": "VADER lexicon + rules (built in): the lower anchor"}  # fmt: skip
    try:
        if (path / CASCADE_FILE).is_file():
            c = read_cascade(path)
            return {"name": name, "kind": "cascade", "version": c.version, "path": str(path),
                    "about": f"{c.fast} first; {c.accurate} when the fast margin < {c.threshold:g}"}  # fmt: skip
        m = read_manifest(path, verify_files=False)
    except BundleError as exc:
        return {"name": name, "kind": "invalid", "version": "", "path": str(path), "error": str(exc)}
    return {"name": m.name, "kind": m.kind, "version": m.version, "path": str(path),
            "size_mb": round((m.size_bytes or 0) / 1e6, 2), "texts_per_s": m.throughput.get("texts_per_s"),
            "macro_f1": round(mean_metric({"metrics": m.metrics}, "macro_f1"), 4)}  # fmt: skip


def _registered(ctx: typer.Context) -> list[dict[str, Any]]:
    """Catalogue rows of the registered versions (named by reference), with their aliases; none (and no database
    query) while the registry folder holds no version."""
    reg = _registry(ctx)
    try:
        if not reg.has_versions():
            return []
        rows = []
        for v in reg.versions():
            row = {**_entry(v["ref"], Path(v["path"])), "name": v["ref"], "aliases": v["aliases"],
                   "registered_at": v["registered_at"], "registered_by": v["registered_by"]}  # fmt: skip
            row["about"] = ", ".join(v["aliases"]) or "registered"
            rows.append(row)
        return rows
    finally:
        reg.close()


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    directory: str = typer.Option(None, "--dir", help="Folder holding bundles (default: inference.models_dir)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every name `--model` accepts: bundles, cascades, the built-in lexicon and registered versions (NAME@VERSION,
    with their aliases), with kind, version, size, speed and mean accuracy."""
    from sentimon.inference import available_models

    folder = Path(directory) if directory else settings_of(ctx).inference.models_dir
    rows = [_entry(name, Path(name) if Path(name).is_dir() else folder / name) for name in available_models(folder)]
    rows += _registered(ctx)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "version", "size MB", "texts/s", "mean macro-F1", "about")
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "[red]invalid[/]", "", "", "", "", r["error"])
        elif "size_mb" in r:
            table.add_row(r["name"], r["kind"], r["version"], f"{r['size_mb']:.1f}", f"{r['texts_per_s'] or 0:,.0f}",
                          f"{r['macro_f1']:.3f}", r.get("about", ""))  # fmt: skip
        else:
            table.add_row(r["name"], r["kind"], r["version"], "-", "-", "-", r["about"])
    out.print(table)
    if len(rows) == 1:
        console.print(f"no bundles in {folder}; build them with `sentimon compress`")


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name from `sentimon models list`, a bundle path, or NAME@VERSION|ALIAS."),
    as_json: bool = typer.Option(False, "--json", help="Print the full manifest (or cascade config) as JSON."),
) -> None:
    """Validate one model (bundle checksums included) and print its summary."""
    from sentimon.inference.bundle import read_manifest
    from sentimon.inference.cascade import CASCADE_FILE, read_cascade

    folder = settings_of(ctx).inference.models_dir
    path = _resolve(ctx, name, folder)
    if name == "vader" or (path / CASCADE_FILE).is_file():
        entry = _entry(name, path)
        if as_json:
            config = read_cascade(path).model_dump(mode="json") if entry["kind"] == "cascade" else entry
            typer.echo(json.dumps(config, indent=2))
        else:
            out.print(f"[bold]{entry['name']}[/] {entry['version']} ({entry['kind']}): {entry['about']}")
        return
    m = read_manifest(path)
    if as_json:
        typer.echo(json.dumps(m.model_dump(mode="json"), indent=2))
        return
    out.print(f"[bold]{m.name}[/] {m.version} ({m.kind}), {(m.size_bytes or 0) / 1e6:.1f} MB, labels "
              f"{m.labels}, max_length {m.max_length}, inputs {m.inputs}")  # fmt: skip
    out.print(f"teacher: {m.teacher.get('model')} ({m.teacher.get('architecture')})")
    out.print(f"throughput: {m.throughput.get('texts_per_s')} texts/s (batch {m.throughput.get('batch_size')}, "
              f"{m.throughput.get('threads')} threads, {m.throughput.get('machine')})")  # fmt: skip
    table = Table("test split", "accuracy", "macro-F1", "binary acc")
    for split, met in m.metrics.items():  # a hand-made bundle may lack some metrics
        table.add_row(
            split, *(f"{met[k]:.3f}" if k in met else "-" for k in ("accuracy", "macro_f1", "binary_accuracy"))
        )
    out.print(table)
    out.print(f"built: {m.build.get('date')} with `{m.build.get('command')}`; data: "
              + ", ".join(f"{d.name} ({d.sha256[:12]})" for d in m.data))  # fmt: skip


@models_app.command("register")
def register_model(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A model bundle folder (checksums are verified)."),
    name: str = typer.Option(None, "--name", help="Model name in the registry (default: the manifest's name)."),
    why: str = typer.Option("", "--why", help="Reason, kept in the history."),
) -> None:
    """Copy a bundle into an immutable, content-hashed version; the last line printed is its NAME@VERSION
    (registering identical content again prints the same one and copies nothing)."""
    reg = _registry(ctx)
    try:
        done = reg.register(path, name, why)
    finally:
        reg.close()
    if done.new:
        console.print(f"registered {path} as {done.ref} in {done.path}", highlight=False)
    else:
        console.print(f"{path} is already registered as {done.ref} (same content; nothing copied)", highlight=False)
    typer.echo(str(done.ref))


@models_app.command("promote")
def promote_model(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION (or NAME@candidate: the candidate becomes champion)."),
    to: str = typer.Option("champion", "--to", metavar="[champion|candidate]", help="The alias to point at it."),
    why: str = typer.Option("", "--why", help="Reason, kept in the history."),
) -> None:
    """Point an alias at a version; the champion it replaces is remembered for `models rollback`."""
    reg = _registry(ctx, mirror=True)
    try:
        change = reg.promote(ref, to, why)
    finally:
        reg.close()
    _say(change)


@models_app.command("rollback")
def rollback_model(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Model name (optional when the registry holds one model)."),
    why: str = typer.Option("", "--why", help="Reason, kept in the history."),
) -> None:
    """Make the previous champion the champion again, in one step (again: one further back)."""
    from sentimon.core.errors import UserError

    reg = _registry(ctx, mirror=True)
    try:
        if name is None:
            names = reg.names()
            if len(names) != 1:
                raise UserError("name the model to roll back: " + (", ".join(names) or "the registry is empty"))
            name = names[0]
        change = reg.rollback(name, why)
    finally:
        reg.close()
    _say(change)


def _say(change: Any) -> None:
    if change.changed:
        was = f" (was {change.name}@{change.previous})" if change.previous else ""
        console.print(f"{change.name} {change.alias} -> {change.name}@{change.version}{was}", highlight=False)
    else:
        console.print(f"{change.name} {change.alias} already is {change.name}@{change.version}", highlight=False)
    typer.echo(f"{change.name}@{change.version}")


@models_app.command("history")
def history(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Only this model (default: all)."),
    limit: int = typer.Option(50, "--limit", min=1, help="The most recent events to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Who registered, promoted and rolled back which version, when and why (oldest first)."""
    reg = _registry(ctx)
    try:
        events = reg.history(name, limit)
    finally:
        reg.close()
    if as_json:
        typer.echo(json.dumps(events, indent=2))
        return
    table = Table("at", "model", "action", "alias", "version", "previous", "who", "why")
    for e in events:
        table.add_row(e["at"], e["name"], e["action"], e["alias"] or "", e["version"] or "", e["previous"] or "",
                      e["who"], e["why"])  # fmt: skip
    out.print(table)
    if not events:
        console.print("no registry events yet; register a bundle with `sentimon models register PATH`")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
