"""The ``edgewrite`` command line: one small function per command; the library does the work.

Heavy libraries (torch, transformers, peft) are imported inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgewrite import __version__
from edgewrite.errors import EdgewriteError

app = typer.Typer(
    name="edgewrite",
    help="Tune a small LLaMA-family model into an offline writing assistant, and measure whether it is worth it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# emoji off: a path or sentence with ":x:" in it is printed as written
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
# KV-cache cells for `assist` (serve and bench keep the runtime default, 2,048): 8 sentences of ~128 tokens
ASSIST_KV_CELLS = 1024

Force = Annotated[bool, typer.Option("--force", help="Replace an output folder that belongs to another run.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Pre = Annotated[
    str | None, typer.Option("--pre", help="A pre-pass before the model: 'harper' applies Harper's fixes first.")
]
PolicyOpt = Annotated[
    str,
    typer.Option(
        "--policy",
        help="Per-task policy (pre-pass, confidence threshold): 'auto' (the one chosen on dev beside the model's "
        "adapter), 'none', or a policy.json file.",
    ),
]
Threshold = Annotated[
    float | None,
    typer.Option("--threshold", help="Drop the model's edits whose confidence is below this (0-1), over the policy."),
]


def _policy_args(policy: str, threshold: float | None) -> dict:
    return {
        "policy": None if policy == "none" else policy,
        "threshold": threshold,
        "log": lambda line: err_console.print(f"[yellow]{escape(line)}[/]", highlight=False),
    }


def _version(value: bool) -> None:
    if value:
        console.print(f"edgewrite {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


@app.command()
def models(
    use: Annotated[
        str | None,
        typer.Option(
            "--use",
            help="Make this model the default of assist, serve, generate, lsp and check: 'writing', "
            "'writing:fp32', 'default' or an artifact folder; 'shipped' goes back to the shipped model.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="The device whose default --use sets: cpu or cuda.")] = "cpu",
) -> None:
    """List the models edgewrite can use: the embedded default, the shipped model, cached conversions, runs."""
    from edgewrite.models import list_models
    from edgewrite.shipped import choose_default, chosen_default

    _check_device(device)
    if use is not None:
        choose_default(None if use == "shipped" else use, device)
        err_console.print(f"default model on {device}: {chosen_default(device) or 'writing (shipped)'}", markup=False)
        return
    rows = list_models()
    pick = chosen_default("cpu") or "writing"
    for row in rows:
        row["default"] = "*" if pick in (row["ref"], row["path"]) else ""
    if not console.is_terminal:  # piped: one tab-separated line per model, nothing wrapped
        for row in rows:
            sys.stdout.write("\t".join((row["ref"], row["what"], row["status"], row["path"], row["default"])) + "\n")
        return
    table = Table("ref", "what", "status", "path", "default")
    for row in rows:
        table.add_row(row["ref"], row["what"], row["status"], row["path"], row["default"])
    console.print(table)


def _counts_table(manifest: dict) -> Table:
    table = Table("task", "train", "dev", title="rows per task and split")
    counts = manifest["counts"]
    for task in sorted(counts):
        table.add_row(task, str(counts[task].get("train", 0)), str(counts[task].get("dev", 0)))
    table.add_row(
        "[bold]total",
        str(sum(c.get("train", 0) for c in counts.values())),
        str(sum(c.get("dev", 0) for c in counts.values())),
    )
    return table


@app.command()
def data(
    out: Annotated[Path, typer.Option(help="Folder to write train.jsonl, dev.jsonl and a manifest into.")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder of JSONL data sets (layout of shared/data).")] = None,
    recipe: Annotated[Path | None, typer.Option(help="Recipe whose data section to use.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe key, e.g. data.general=200.")
    ] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default: all seven).")] = None,
    force: Force = False,
) -> None:
    """Build the instruction-tuning set for the seven writing tasks."""
    from edgewrite.artifacts import ensure_writable
    from edgewrite.data import build_dataset
    from edgewrite.recipe import load_recipe, recipe_from_overrides

    ensure_writable(out)
    r = load_recipe(recipe, set_) if recipe else recipe_from_overrides(set_)
    config = r.data
    if tasks:
        config = config.model_copy(update={"tasks": _parse_tasks(tasks)})
    if data_dir is not None:
        if not data_dir.is_dir():
            raise EdgewriteError(f"--data-dir {data_dir} does not exist or is not a folder")
        if not any(data_dir.rglob("*.jsonl")):
            raise EdgewriteError(f"--data-dir {data_dir} holds no .jsonl files")
    manifest = build_dataset(config, out, seed=r.train.seed, force=force, data_dir=data_dir)
    console.print(_counts_table(manifest))
    console.print(f"wrote {out}", markup=False)


def _parse_tasks(value: str) -> list[str]:
    from edgewrite.tasks import get_task

    names = [t.strip() for t in value.split(",") if t.strip()]
    for name in names:
        get_task(name)
    return names


@app.command()
def tune(
    recipe: Annotated[Path, typer.Option(help="Recipe YAML (see recipes/).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe key, e.g. train.lr=1e-4.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <out_dir>/<name>/adapter).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint of an interrupted run.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the memory the tune needs per GPU (weights, gradients, optimizer, activations; FSDP "
            "sharding from the recipe's <name>.accelerate.yaml beside it) and stop.",
        ),
    ] = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune (LoRA or full) the recipe's model on its data; builds the data first if needed."""
    if dry_run:
        _tune_dry_run(recipe, set_)
        return
    from accelerate import PartialState

    from edgewrite.data import build_dataset
    from edgewrite.pipeline import stage_dirs
    from edgewrite.recipe import load_recipe
    from edgewrite.train import tune as run_tune

    r = load_recipe(recipe, set_)
    dirs = stage_dirs(r)
    state = PartialState()  # under `accelerate launch` one of several processes: the first builds the data
    with state.main_process_first():
        build_dataset(r.data, dirs["data"], seed=r.train.seed)
    manifest = run_tune(r.train, r.model, dirs["data"], out or dirs["tune"], resume=resume, force=force, quiet=quiet)
    if not state.is_main_process:
        return
    stats = manifest["stats"]
    console.print(
        f"{manifest['kind']} written to {out or dirs['tune']}: {stats['steps']} steps, loss {stats['train_loss']:.3f}, "
        f"{stats['tokens_per_second']} tok/s"
    )


@app.command()
def merge(
    adapter: Annotated[Path, typer.Argument(help="Folder written by `edgewrite tune`.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <adapter>/../merged).")] = None,
    force: Force = False,
) -> None:
    """Fold a LoRA adapter into its base model (safetensors + tokenizer + chat template + stop token)."""
    from edgewrite.merge import merge as run_merge

    target = out or adapter.parent / "merged"
    manifest = run_merge(adapter, target, force=force)
    console.print(f"merged model written to {target} (stop token {manifest['stop_token']!r})", markup=False)


@app.command()
def mix(
    parts: Annotated[
        list[str],
        typer.Argument(
            help="Adapters as FOLDER:WEIGHT (FOLDER alone weighs 1); 'writing' is the shipped adapter. "
            "All of one base model, e.g. writing:0.5 runs/mine/adapter:0.5."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder: an adapter, for `edgewrite merge`.")],
    force: Force = False,
) -> None:
    """Sum LoRA adapters of one base model, weighted, into one exact LoRA adapter (a model soup)."""
    from edgewrite.mix import mix as run_mix
    from edgewrite.mix import parse_part

    manifest = run_mix([parse_part(p) for p in parts], out, force=force)
    console.print(
        f"mixed adapter (rank {manifest['train']['lora_r']}) written to {out}; fold it in with `edgewrite merge {out}`",
        markup=False,
    )


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/quickstart.yaml.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe key.")] = None,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Run every stage of a recipe (data, tune, merge); finished stages are skipped, tune resumes."""
    from edgewrite.pipeline import run_recipe
    from edgewrite.recipe import load_recipe

    r = load_recipe(recipe, set_)
    dirs = run_recipe(r, force=force, quiet=quiet, log=lambda line: console.print(line, markup=False, highlight=False))
    console.print(f"[bold green]done[/]: merged model in {escape(str(dirs['merge']))}")


@app.command()
def quantize(
    model: Annotated[str, typer.Argument(help="Merged model folder (or 'default' for the embedded model).")],
    format_: Annotated[
        str, typer.Option("--format", "-f", help="gguf (default: llama.cpp k-quants), gptq or onnx.")
    ] = "gguf",
    bits: Annotated[int, typer.Option(help="gguf: 2,3,4,5,6,8,16; gptq: 2,3,4,8; onnx: 4,16,32.")] = 4,
    type_: Annotated[str | None, typer.Option("--type", help="Explicit llama.cpp type, e.g. Q4_0, IQ4_NL.")] = None,
    group_size: Annotated[
        int | None, typer.Option(help="GPTQ group size (default: largest of 128/64/32 that fits).")
    ] = None,
    samples: Annotated[
        int, typer.Option(min=1, help="Calibration rows (GPTQ; --rounding imatrix or autoround).")
    ] = 256,
    calibration: Annotated[
        Path | None,
        typer.Option(help="GPTQ / --rounding imatrix or autoround: an `edgewrite data` folder to calibrate on."),
    ] = None,
    rounding: Annotated[
        str,
        typer.Option(
            "--rounding",
            help="gguf: how weights are put on the grid. nearest (llama.cpp); imatrix (weighted by an importance "
            "matrix from the model's own training rows) or imatrix:FILE (by that matrix); autoround[:STEPS] "
            "(AutoRound's tuned rounding, 200 steps per block by default); FILE: a rounding.npz an autoround "
            "export of this same model wrote (or the one shipped with 'writing'), applied without training rows.",
        ),
    ] = "nearest",
    tensor_type: Annotated[
        list[str] | None,
        typer.Option(
            "--tensor-type",
            help="gguf: PATTERN=TYPE, a ggml type for the tensors whose GGUF name matches the regex "
            "(repeatable; llama-quantize's flag), e.g. attn_v=Q8_0. With --rounding autoround: those layers are "
            "tuned and written in Q8_0.",
        ),
    ] = None,
    runtime_lora: Annotated[
        bool,
        typer.Option(
            "--runtime-lora",
            help="gguf: keep the LoRA adapter apart (llama.cpp's --lora): the base model quantized (a base "
            "loaded from a GGUF at these bits, like the embedded Q4_1 model, is used as is) plus the adapter at "
            "16 bits, applied at run time. Takes a tune folder, 'writing', or a model merged from an adapter.",
        ),
    ] = False,
    imatrix: Annotated[bool, typer.Option("--imatrix", hidden=True)] = False,
    imatrix_file: Annotated[Path | None, typer.Option("--imatrix-file", hidden=True)] = None,
    autoround: Annotated[int, typer.Option("--autoround", hidden=True, min=0)] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda (GPTQ kernels, ONNX execution provider).")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: beside the model, e.g. gguf-q4_k_m).")
    ] = None,
    force: Force = False,
) -> None:
    """Quantize a merged model to GGUF (default; 4 bits = Q4_K_M), GPTQ or ONNX int4."""
    from edgewrite.quantize import quantize as run_quantize

    _check_device(device)
    rounding = _rounding_option(rounding, imatrix, imatrix_file, autoround)
    if model in ("writing", "writing:fp32") and not Path(model).exists():  # the shipped model's fp32 merge
        from edgewrite.shipped import merged_writing

        model = str(merged_writing())
    path, manifest = run_quantize(
        model,
        format_,
        bits,
        out,
        gguf_type=type_,
        group_size=group_size,
        samples=samples,
        calibration=calibration,
        device=device,
        force=force,
        tensor_types=tensor_type,
        runtime_lora=runtime_lora,
        rounding=rounding,
        log=lambda line: console.print(line, markup=False, highlight=False),
    )
    size = sum(f["bytes"] for f in manifest["files"].values())
    console.print(
        f"{format_} artifact written to {path} ({size / 1e6:.1f} MB, stop token {manifest['stop_token']!r})",
        markup=False,
    )
    if manifest["details"].get("fallback_tensors"):
        d = manifest["details"]
        console.print(
            f"[yellow]{d['fallback_tensors']} of {d['total_quantized_tensors']} tensors fell back to "
            f"another type[/]: {escape('; '.join(d['fallback_reasons']))}"
        )


def _tune_dry_run(recipe: Path, set_: list[str] | None) -> None:
    from edgewrite.memory import GIB, accelerate_gpus, free_gpu_memory, model_shape, plan
    from edgewrite.recipe import load_recipe

    r = load_recipe(recipe, set_)
    launch = recipe.with_name(recipe.name.removesuffix(".yaml") + ".accelerate.yaml")
    gpus, sharded = accelerate_gpus(launch)
    shape = model_shape(r.model)
    free = free_gpu_memory()
    lines: list[str] = []
    if r.train.device != "cpu":
        p = plan(shape, r.train, gpus, sharded)
        lines += p.lines()
        if sharded:
            lines.append(f"  launch: accelerate launch --config_file {launch} -m edgewrite tune --recipe {recipe}")
        lines.append("  GPUs here: " + (", ".join(f"{f / GIB:.1f} GiB free" for f in free) if free else "none visible"))
    if r.train.device == "cpu" or (r.train.device == "auto" and not free):
        p = plan(shape, r.train, bf16=False)
        host = p.total - p.overhead
        lines.append(
            f"on CPU (as this machine would run it): about {host / GIB:.1f} GiB of host memory "
            f"(fp32 weights {p.weights / GIB:.1f}, gradients and optimizer {(p.gradients + p.optimizer) / GIB:.1f}, "
            f"activations {p.activations / GIB:.1f})"
        )
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _rounding_option(rounding: str, imatrix: bool, imatrix_file: Path | None, autoround: int) -> str:
    """--rounding, or what the flags it replaced (still accepted, with a deprecation line) said."""
    old = [
        (flag, form)
        for flag, form, given in (
            ("--imatrix", "imatrix", imatrix),
            ("--imatrix-file", f"imatrix:{imatrix_file}", imatrix_file is not None),
            ("--autoround", f"autoround:{autoround}", autoround > 0),
        )
        if given
    ]
    if not old:
        return rounding
    if len(old) > 1 or rounding != "nearest":
        given = [flag for flag, _ in old] + (["--rounding"] if rounding != "nearest" else [])
        raise EdgewriteError(f"{' and '.join(given)} each say how to round; give one --rounding")
    flag, form = old[0]
    err_console.print(f"{flag} is deprecated: use --rounding {form}", markup=False, highlight=False)
    return form


@app.command()
def generate(
    text: Annotated[str, typer.Argument(help="The text to edit.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Artifact folder, 'writing' (shipped tuned model) or 'default' (untuned); "
            "default: the last report's pick, else 'writing'.",
        ),
    ] = None,
    task: Annotated[str, typer.Option(help="Writing task (grammar, fluency, clarity, ...).")] = "grammar",
    instruction: Annotated[str | None, typer.Option(help="Override the task's instruction wording.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, max=4096)] = 128,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Edit one text with any model artifact (the runtime is picked from its manifest)."""
    from edgewrite.runtimes import load_runtime
    from edgewrite.tasks import build_prompt, get_task, register_from, style_of

    register_from(model or "")  # a model tuned on custom tasks knows them
    spec = get_task(task)
    if not text.strip():
        raise EdgewriteError("the text to edit is empty")
    _check_device(device)
    path = _artifact_path(model) if model else _default_artifact(device)
    runtime, manifest = load_runtime(path, device=device)
    prompt = build_prompt(
        runtime.tokenizer, instruction or spec.default_instruction, text, style_of(manifest, runtime.tokenizer)
    )
    (g,) = runtime.generate([prompt], max_new_tokens=max_new_tokens)
    sys.stdout.write(g.text + "\n")  # the answer alone, unwrapped: `$(edgewrite generate ...)` gets just it
    err_console.print(
        f"[dim]{g.new_tokens} tokens, first after {g.ttft_s * 1000:.0f} ms, "
        f"{g.new_tokens / max(g.decode_s + g.ttft_s, 1e-9):.1f} tok/s, stop: {g.finish}[/]"
    )


@app.command()
def assist(
    source: Annotated[str, typer.Argument(help="A text or markdown file, or - for standard input.")] = "-",
    task: Annotated[str, typer.Option(help="grammar, fluency, clarity, coherence, simplification, ...")] = "grammar",
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Artifact (default: the last report's pick, else the shipped 'writing' model)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the result here (default: standard output).")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace FILE (atomically; keeps FILE.bak).")] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Show each edit: where, its kind, the change and the reason.")
    ] = False,
    format_: Annotated[
        str,
        typer.Option(
            "--format", help="text: the edited document; json: one JSON object per edit (line, column, kind, ...)."
        ),
    ] = "text",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    pre: Pre = None,
    policy: PolicyOpt = "auto",
    threshold: Threshold = None,
    quiet: Quiet = False,
) -> None:
    """Edit a document offline: sentences (paragraphs for coherence) in batches, markdown structure kept."""
    from edgewrite.assist import (
        assist_document,
        check_writable,
        piece_suggestions,
        read_input,
        segment,
        write_output,
    )
    from edgewrite.check import CheckedFile, format_row, located
    from edgewrite.edit import check_pre, load_editor
    from edgewrite.progress import Progress
    from edgewrite.tasks import get_task, register_from

    register_from(model or "")
    spec = get_task(task)
    check_pre(pre)
    if format_ not in ("text", "json"):
        raise EdgewriteError(f"--format {format_}: give text or json")
    if in_place and (source == "-" or out is not None):
        raise EdgewriteError("--in-place needs a FILE argument and no --out")
    if out is not None and source != "-" and out.resolve() == Path(source).resolve():
        raise EdgewriteError("--out is the input file; use --in-place to overwrite it")
    _check_device(device)
    document = read_input(source)
    target = Path(source) if in_place else out
    if target is not None:
        check_writable(target)  # before any editing work
    # a document is edited a few sentences at a time: half the serving KV cache holds them (and is 23 MB
    # less resident memory for SmolLM2); a piece that does not fit waits for cells, one too long alone
    editor, _ = load_editor(
        _artifact_path(model) if model else _default_artifact(device),
        device=device,
        batch_size=batch_size,
        pre=pre,
        n_ctx=ASSIST_KV_CELLS,
        **_policy_args(policy, threshold),
    )
    units = sum(p.editable for p in segment(document, spec.unit))
    with Progress(task, units, quiet=quiet) as bar:
        result, pieces, edited = assist_document(
            editor,
            document,
            task,
            batch_size,
            progress=lambda n: bar.advance(n),
            log=lambda line: err_console.print(f"[yellow]{escape(line)}[/]", highlight=False),
        )
    rows = located(CheckedFile(Path(source), document, piece_suggestions(pieces, edited)))
    if format_ == "json":  # the edits are the output; the document goes only where --out/--in-place say
        for row in rows:
            sys.stdout.write(format_row(row, "json") + "\n")
    elif diff:
        shown = err_console if target is None else console
        for row in rows:
            shown.print(format_row(row), highlight=False, markup=False, soft_wrap=True)
        shown.print(f"[dim]{len(rows)} edit(s)[/]")
    if target is not None:
        write_output(result, target, backup=in_place)
        err_console.print(
            f"edited {source} in place (previous version: {source}.bak)" if in_place else f"wrote {out}", markup=False
        )
    elif format_ == "text":
        sys.stdout.write(result)


@app.command()
def check(
    paths: Annotated[list[str], typer.Argument(help="Files, folders (their .md/.txt/.rst files) or globs.")],
    task: Annotated[str, typer.Option(help="grammar, fluency, clarity, coherence, simplification, ...")] = "grammar",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Artifact or system (default: the shipped 'writing' model)."),
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="text (path:line:col: kind: ...) or json.")] = "text",
    disable: Annotated[
        list[str] | None, typer.Option("--disable", help="A kind not to report (repeatable), e.g. 'rewrite'.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    pre: Pre = None,
    policy: PolicyOpt = "auto",
    threshold: Threshold = None,
    quiet: Quiet = False,
) -> None:
    """Check files as a linter: one line per suggested edit; exit 1 if there is any, 0 if none, 2 on bad input."""
    from edgewrite.check import check_files, collect_files, format_row, located
    from edgewrite.edit import check_pre, load_editor
    from edgewrite.edit.spans import KINDS
    from edgewrite.progress import Progress
    from edgewrite.tasks import get_task, register_from

    register_from(model or "")
    get_task(task)
    check_pre(pre)
    if format_ not in ("text", "json"):
        raise EdgewriteError(f"--format {format_}: give text or json")
    off = set(disable or [])
    if unknown := sorted(off - set(KINDS)):
        raise EdgewriteError(f"--disable {', '.join(unknown)}: unknown kind; kinds: {', '.join(KINDS)}")
    _check_device(device)
    files = collect_files(paths)
    editor, _ = load_editor(
        _artifact_path(model) if model else _default_artifact(device),
        device=device,
        batch_size=batch_size,
        pre=pre,
        **_policy_args(policy, threshold),
    )
    bars: list = []

    def start(n: int) -> None:
        bars.append(Progress(f"check {len(files)} file(s)", n, quiet=quiet or n < 20).__enter__())

    try:
        checked = check_files(
            editor,
            files,
            task,
            batch_size,
            warn=lambda line: err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False),
            progress=lambda k: bars[0].advance(k) if bars else None,
            on_units=start,
        )
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    found = 0
    for item in checked:
        for row in located(item):
            if row["kind"] in off:
                continue
            found += 1
            sys.stdout.write(format_row(row, format_) + "\n")
    if format_ == "text":
        err_console.print(f"{found} suggestion(s) in {len(checked)} file(s)", markup=False)
    if found:
        raise typer.Exit(1)


@app.command()
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Artifact (default: the last report's pick, else the shipped 'writing' model)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    pre: Pre = None,
    policy: PolicyOpt = "auto",
    threshold: Threshold = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require 'Authorization: Bearer KEY' (needed off loopback; or set EDGEWRITE_API_KEY)."),
    ] = None,
    queue_size: Annotated[int, typer.Option(min=1, help="Requests that may wait; more get 503.")] = 64,
    max_batch: Annotated[
        int,
        typer.Option(
            min=1,
            help="Sentences the engine takes per pass (1: one at a time); llama.cpp decodes up to 16 of them at "
            "once, refilling a finished one's slot, and answers each request as soon as its sentences are done.",
        ),
    ] = 64,
) -> None:
    """Serve the editor page at /, an OpenAI-compatible /v1/chat/completions and a task-aware /v1/edit."""
    import os

    from edgewrite.artifacts import read_manifest
    from edgewrite.edit import SYSTEMS, check_pre
    from edgewrite.serve import check_host
    from edgewrite.serve import serve as run_server

    _check_device(device)
    check_pre(pre)
    key = api_key or os.environ.get("EDGEWRITE_API_KEY") or None
    check_host(host, port, key)  # an invalid host, a port in use or a missing key: before anything loads
    path = _artifact_path(model) if model else _default_artifact(device)
    if str(path) not in SYSTEMS:
        manifest = read_manifest(path)  # a bad path fails here, before anything is announced
        from edgewrite.tasks import register_from_manifest

        register_from_manifest(manifest)  # /v1/edit takes the model's custom tasks too
        if manifest.get("kind") in ("adapter", "data"):
            raise EdgewriteError(f"{path} is a '{manifest['kind']}' artifact, not a model; merge it or give a model")
    err_console.print(
        f"serving {path} on http://{host}:{port}/ (OpenAI base URL http://{host}:{port}/v1)", markup=False
    )
    run_server(
        path,
        host,
        port,
        device,
        pre=pre,
        api_key=key,
        queue_size=queue_size,
        max_batch=max_batch,
        editor_args=_policy_args(policy, threshold),
    )


@app.command()
def lsp(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Artifact, or the system 'harper' (default: the last report's pick, else the shipped model).",
        ),
    ] = None,
    task: Annotated[
        str, typer.Option(help="The edit offered: grammar, fluency, clarity, simplification, ...")
    ] = "grammar",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    pre: Pre = None,
    policy: PolicyOpt = "auto",
    threshold: Threshold = None,
    debounce: Annotated[float, typer.Option(help="Seconds of quiet after a change before checking.")] = 0.4,
) -> None:
    """Language server over stdio: diagnostics for sentences the model would edit, a quick fix applies them."""
    from edgewrite.edit import check_pre, load_editor
    from edgewrite.lsp import serve_stdio
    from edgewrite.tasks import get_task, register_from

    register_from(model or "")
    get_task(task)
    check_pre(pre)
    _check_device(device)
    if debounce < 0:
        raise EdgewriteError(f"--debounce {debounce}: give zero or more seconds")
    editor, _ = load_editor(
        _artifact_path(model) if model else _default_artifact(device),
        device=device,
        pre=pre,
        **_policy_args(policy, threshold),
    )
    serve_stdio(editor, task, debounce)


export_app = typer.Typer(help="Export an artifact for another local runtime.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("ollama")
def export_ollama(
    artifact: Annotated[Path, typer.Argument(help="A GGUF artifact folder (from `edgewrite quantize -f gguf`).")],
    out: Annotated[Path | None, typer.Option(help="Folder for the Modelfile (default: the artifact folder).")] = None,
) -> None:
    """Write an Ollama Modelfile: template, system prompt, stop token and greedy sampling from the artifact."""
    from edgewrite.export import ollama_modelfile

    path = ollama_modelfile(artifact, out or artifact)
    console.print(f"wrote {path}; then: ollama create edgewrite -f {path}", markup=False)


DataDir = Annotated[
    Path | None,
    typer.Option(help="Data folder in the layout of shared/data (default: $EDGEWRITE_DATA, else ../shared/data)."),
]


def _artifact_path(ref: str) -> Path:
    from edgewrite.shipped import artifact_path

    return artifact_path(ref, log=lambda line: err_console.print(f"[dim]{escape(line)}[/]"))


def _default_artifact(device: str) -> Path:
    from edgewrite.shipped import default_artifact

    return default_artifact(device, log=lambda line: err_console.print(f"[dim]{escape(line)}[/]"))


@app.command("eval")
def eval_(
    artifact: Annotated[str, typer.Argument(help="Model artifact folder, or 'default'.")],
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default: all seven).")] = None,
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="dev, or test for the official test files.")] = "dev",
    limit: Annotated[
        int | None, typer.Option(help="A seeded random sample of N rows per evaluation set (default: every row).")
    ] = None,
    headline_only: Annotated[
        bool, typer.Option("--headline-only", help="Only the set that gives each task's headline number.")
    ] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    batch_size: Annotated[int, typer.Option(help="Prompts per forward pass (hf and gptq runtimes).")] = 8,
    out: Annotated[Path | None, typer.Option(help="Folder for eval.json and rows.jsonl.")] = None,
    pre: Pre = None,
    quiet: Quiet = False,
) -> None:
    """Score an artifact (or the systems copy, harper) with SARI, GLEU, F0.5, iBLEU, exact match (95 % intervals)."""
    from edgewrite.edit import check_pre
    from edgewrite.evaluate import evaluate
    from edgewrite.progress import Progress
    from edgewrite.recipe import default_data_dir
    from edgewrite.tasks import register_from

    _check_device(device)
    check_pre(pre)
    register_from(artifact)
    data_dir = data_dir or default_data_dir()
    bar = Progress("eval", 0, quiet=quiet)

    def start(total: int) -> None:
        bar.total = total
        bar.__enter__()

    try:
        result, target = evaluate(
            _artifact_path(artifact),
            data_dir,
            tasks=_parse_tasks(tasks) if tasks else None,
            split=split,
            limit=limit,
            device=device,
            batch_size=batch_size,
            out=out,
            headline_only=headline_only,
            progress=lambda n: bar.advance(n),
            on_start=start,
            pre=pre,
        )
    finally:
        bar.__exit__(None, None, None)
    table = Table("set", "rows", "scores")
    for key, scores in result["sets"].items():
        table.add_row(key, str(_rows_of(target, key)), ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    console.print(table)
    ci = result.get("headline_ci", {})
    for task, value in result["headline"].items():
        c = ci.get(task)
        console.print(
            f"{task}: {value:.2f}"
            + (f" [{c['lo']:.2f}, {c['hi']:.2f}]" if c else "")
            + f"  ({result['headline_source'][task]})"
        )
    m = result.get("mean_ci")
    console.print(f"mean headline quality: {result['mean']:.2f}" + (f" [{m['lo']:.2f}, {m['hi']:.2f}]" if m else ""))
    console.print(f"wrote {target}/eval.json and rows.jsonl", markup=False)


def _rows_of(target: Path, key: str) -> int:
    import json

    return sum(
        1 for line in (target / "rows.jsonl").read_text(encoding="utf-8").splitlines() if json.loads(line)["set"] == key
    )


def _check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise EdgewriteError(f"--device {device}: use cpu or cuda")


@app.command()
def bench(
    artifacts: Annotated[
        list[str] | None,
        typer.Argument(help="Model artifact folders (copy, the untuned base model and Harper are always added)."),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, or cpu,cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads per runtime (default: all cores).")] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default: all seven).")] = None,
    limit: Annotated[
        int | None, typer.Option(help="A seeded random sample of N rows per evaluation set (default: every row).")
    ] = None,
    split: Annotated[str, typer.Option(help="dev or test.")] = "dev",
    latency_rows: Annotated[
        int, typer.Option(help="Single requests timed for runtimes that batch their quality pass.")
    ] = 140,
    pre: Annotated[
        str | None,
        typer.Option("--pre", help="Also bench every listed artifact behind this pre-pass (harper)."),
    ] = None,
    pre_on: Annotated[
        str | None,
        typer.Option("--pre-on", help="Comma-separated artifacts that get the --pre variant (default: all listed)."),
    ] = None,
    headline_only: Annotated[
        bool, typer.Option("--headline-only", help="Only the set that gives each task's headline number.")
    ] = False,
    policy: Annotated[
        bool,
        typer.Option(
            "--policy",
            help="Also bench every listed artifact under its per-task policy (the policy.json beside "
            "its adapter), beside the plain model.",
        ),
    ] = False,
    policy_on: Annotated[
        str | None,
        typer.Option(
            "--policy-on", help="Comma-separated artifacts that get the --policy variant (default: all listed)."
        ),
    ] = None,
    base: Annotated[
        str,
        typer.Option(
            help="The untuned model benched beside them: 'default' (SmolLM2-135M-Instruct), 'gemma3-270m', a "
            ".gguf file or an edgewrite model folder; give the base your artifacts were tuned from."
        ),
    ] = "default",
    data_dir: DataDir = None,
    train_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--train-data",
            help="An `edgewrite data` folder whose training rows are not scored either (repeatable): for models "
            "whose manifest does not say where their data is, like the shipped 'writing' adapter.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Bench folder (finished cells are kept and skipped on re-run).")] = Path(
        "benchmarks/results/bench"
    ),
    rescore: Annotated[
        bool, typer.Option("--rescore", help="Re-score finished cells from their stored outputs (no generation).")
    ] = False,
    agreement: Annotated[
        int,
        typer.Option(
            "--agreement",
            min=0,
            help="Rows per task on which each quantized artifact is teacher-forced on its fp32 parent's answers "
            "(the parent benched beside it): tokens and whole answers it agrees on. 0: skip.",
        ),
    ] = 0,
    quiet: Quiet = False,
) -> None:
    """Quality, latency, throughput, memory and size for each artifact x device, plus copy and base rows."""
    from edgewrite.bench import bench as run_bench
    from edgewrite.recipe import default_data_dir
    from edgewrite.report import terminal_table
    from edgewrite.tasks import register_from

    for artifact in artifacts or []:  # before --tasks is read: a model tuned on custom tasks names them
        register_from(artifact)
    data_dir = data_dir or default_data_dir()
    devices = [d.strip() for d in device.split(",") if d.strip()]
    command = "edgewrite bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None
    doc = run_bench(
        artifacts or [],
        out,
        devices,
        threads,
        _parse_tasks(tasks) if tasks else None,
        limit,
        split,
        data_dir,
        quiet=quiet,
        command=command,
        base=base,
        rescore=rescore,
        latency_rows=latency_rows,
        pre=pre,
        headline_only=headline_only,
        pre_on=[a.strip() for a in pre_on.split(",") if a.strip()] if pre_on else None,
        train_data=train_data,
        policy=policy,
        policy_on=[a.strip() for a in policy_on.split(",") if a.strip()] if policy_on else None,
        agreement=agreement,
    )
    console.print(terminal_table(doc))
    console.print(f"wrote {out}/bench.json; render it with `edgewrite report {out}`", markup=False)


@app.command()
def report(
    bench_dir: Annotated[Path, typer.Argument(help="Folder written by `edgewrite bench`.")],
    out: Annotated[Path | None, typer.Option(help="HTML file (default: <bench_dir>/report.html).")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="Budget: one-sentence edit p50.")] = None,
    max_memory_mb: Annotated[float | None, typer.Option(help="Budget: peak RSS.")] = None,
    max_bits: Annotated[
        int | None, typer.Option(help="Budget: bits per weight (4: only 4-bit artifacts ship; unquantized is 32).")
    ] = None,
) -> None:
    """Render tables, quality-vs-cost plots and a verdict from stored bench results (no re-runs)."""
    from edgewrite.report import terminal_table, write_report

    doc, verdicts, target = write_report(bench_dir, out, max_latency_ms, max_memory_mb, max_bits)
    console.print(terminal_table(doc))
    for v in verdicts:
        for line in v["text"]:
            console.print(line.replace("**", ""))
        if v.get("artifact"):  # the default changes only when the user says so
            flag = "" if v["device"] == "cpu" else f" --device {v['device']}"
            console.print(
                f"to make it the default: edgewrite models --use {v['artifact']}{flag}", highlight=False, markup=False
            )
    console.print(f"wrote {target} and {target.with_suffix('.md')}", markup=False)


def main() -> None:
    """The entry point: every failure a user can cause ends in one line on stderr and exit code 2."""
    from edgewrite import quiet_third_party_logs

    quiet_third_party_logs()
    try:
        code = app(prog_name="edgewrite", standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) raised inside a command comes back as its code
            sys.exit(code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except EdgewriteError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted; finished stages are kept and `edgewrite run` resumes the rest")
        sys.exit(130)
    except typer.TyperException as e:  # click's usage errors: a missing argument, a value of the wrong type
        if type(e).__name__ == "NoArgsIsHelpError":  # the help was shown
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "edgewrite"
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        err_console.print(
            f"[bold red]error:[/] {escape(message)} (see `{where} --help`)", highlight=False, soft_wrap=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
