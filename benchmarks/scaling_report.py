"""Growth factors, the markdown table and the plot of `benchmarks.scaling`.

Per-document cost is taken net of the stage's fixed cost (its wall time on the "fixed" run's
almost empty input), because on 2 cores a Spark stage's start (jobs, tasks, Python workers,
Delta commits) is seconds, which would otherwise make every stage look sub-linear at small N
and hide a super-linear step behind it. The raw ratio (wall per document, nothing subtracted)
is reported beside it.
"""

from __future__ import annotations

from pathlib import Path

SCALES = ("N", "4N", "16N")
TARGET = 1.25
MEMORY_LINES = (
    ("driver_py", "driver Python (RSS)"),
    ("jvm", "JVM, driver + executor (RSS)"),
    ("workers", "Python workers (RSS, shared pages counted per worker)"),
    ("workers_pss", "Python workers (PSS)"),
)
# Hand-written findings below this line in docs/scaling.md survive a rerun of the benchmark.
NOTES = "<!-- notes: written by hand, kept when benchmarks.scaling rewrites the tables above -->"


def _by_stage(result: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in result["stages"]}


def _net(results: dict[str, dict], stage: str, key: str) -> dict[str, float]:
    """`key` (seconds or CPU seconds) per 1,000 worked rows at each scale, net of the fixed run's."""
    base = _by_stage(results["fixed"])[stage]
    net = {}
    for scale in SCALES:
        row = _by_stage(results[scale])[stage]
        net[scale] = round(1000 * (row[key] - base[key]) / max(1, row["docs"] - base["docs"]), 3)
    return net


def _factor(net: dict[str, float]) -> float | None:
    # A stage whose cost at N or 16N does not exceed its fixed run has no measurable per-document
    # cost there: its factor is reported as None, not as a number made of noise.
    return round(net["16N"] / net["N"], 2) if net["N"] > 0 and net["16N"] > 0 else None


def growth(results: dict[str, dict]) -> dict[str, dict]:
    """Per stage: fixed seconds, net and raw seconds per 1,000 documents at each scale, the factors;
    the same for CPU seconds where the figures have them (runs before the CPU probe do not)."""
    fixed = _by_stage(results["fixed"])
    factors = {}
    for stage in _by_stage(results["N"]):
        rows = {scale: _by_stage(results[scale])[stage] for scale in SCALES}
        net = _net(results, stage, "seconds")
        raw = {scale: round(1000 * row["seconds"] / max(1, row["docs"]), 3) for scale, row in rows.items()}
        has_cpu = all("cpu_s" in row for row in [*rows.values(), fixed[stage]])
        cpu = _net(results, stage, "cpu_s") if has_cpu else None
        factors[stage] = {
            "fixed_s": fixed[stage]["seconds"],
            "net_s_per_1k": net,
            "raw_s_per_1k": raw,
            "growth": _factor(net),
            "raw_growth": round(raw["16N"] / raw["N"], 2),
            "net_cpu_s_per_1k": cpu,
            "cpu_growth": _factor(cpu) if cpu else None,
        }
    return factors


def _mib(value: float) -> str:
    return f"{value:,.0f}"


def _size_rows(results: dict[str, dict]) -> list[str]:
    rows = [
        "| stage | size | rows worked (kept input) | wall s | tasks | shuffle write MB | shuffle read MB "
        "| peak RSS MiB: driver py / JVM / workers / all | workers PSS MiB | JVM heap used MiB |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for stage in _by_stage(results["N"]):
        for size in ("fixed", *SCALES):
            row = _by_stage(results[size])[stage]
            mem = row["peak_mib"]
            rows.append(
                f"| {stage} | {size} | {row['docs']:,} | {row['seconds']:.1f} | {row['tasks']} "
                f"| {row['shuffle_write_bytes'] / 1e6:.1f} | {row['shuffle_read_bytes'] / 1e6:.1f} "
                f"| {_mib(mem['driver_py'])} / {_mib(mem['jvm'])} / {_mib(mem['workers'])} / {_mib(mem['total'])} "
                f"| {_mib(mem.get('workers_pss', 0))} | {_mib(mem['heap'])} |"
            )
    return rows


def _growth_rows(factors: dict[str, dict]) -> list[str]:
    rows = [
        "| stage | fixed s | net s/1k docs at N | at 4N | at 16N | growth 16N/N (net) | raw growth "
        "| net CPU s/1k at N | at 16N | CPU growth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage, f in factors.items():
        net, cpu = f["net_s_per_1k"], f["net_cpu_s_per_1k"]
        cpu_cells = f"{cpu['N']:.2f} | {cpu['16N']:.2f} | {_shown(f['cpu_growth'])}" if cpu else "- | - | -"
        rows.append(
            f"| {stage} | {f['fixed_s']:.1f} | {net['N']:.2f} | {net['4N']:.2f} | {net['16N']:.2f} "
            f"| {_shown(f['growth'])} | {f['raw_growth']:.2f} | {cpu_cells} |"
        )
    return rows


def _shown(factor: float | None) -> str:
    if factor is None:
        return "n/a (not above the fixed run at N or 16N)"
    return f"**{factor:.2f}**" if factor > TARGET else f"{factor:.2f}"


def plot(results: dict[str, dict], factors: dict[str, dict], path: Path) -> None:
    """Net per-document cost against size (one line per stage) and peak memory against size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [results[s]["docs"] for s in SCALES]
    fig, (cost, memory) = plt.subplots(1, 2, figsize=(13, 5))
    for stage, f in factors.items():
        stage_docs = [_by_stage(results[s])[stage]["docs"] for s in SCALES]
        cost.plot(stage_docs, [f["net_s_per_1k"][s] for s in SCALES], marker="o", label=stage)
    cost.set(xscale="log", yscale="log", xlabel="documents", ylabel="s per 1,000 documents (net of fixed)")
    cost.set_title("per-document cost against size (flat = linear)")
    cost.legend(fontsize=7)
    for key, label in MEMORY_LINES:
        memory.plot(docs, [results[s]["peak_mib"].get(key, 0) for s in SCALES], marker="o", label=label)
    memory.set(xscale="log", xlabel="documents", ylabel="peak RSS, MiB (whole run)")
    memory.set_title("peak memory against size")
    memory.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict, factors: dict, settings: dict, load: dict, out_dir: Path) -> None:
    """docs/scaling.md (the tables) and docs/screenshots/scaling.png (the plot)."""
    plot(results, factors, out_dir / "screenshots" / "scaling.png")
    docs = ", ".join(f"{s} = {results[s]['docs']:,}" for s in ("fixed", *SCALES))
    lines = [
        "# Scaling: per-document cost of every stage at N, 4N and 16N documents",
        "",
        "Written by `python -m benchmarks.scaling` (see its docstring for the corpus and the method).",
        f"Settings: `{settings}`; documents per run: {docs}.",
        f"Load average (1, 5, 15 min) at start {load['start']}, at end {load['end']}: the machine has 2 cores.",
        "",
        "![per-document cost and peak memory against size](screenshots/scaling.png)",
        "",
        "## Growth",
        "",
        *_growth_rows(factors),
        "",
        "## Every stage at every size",
        "",
        "Peak RSS is sampled every 0.2 s over the stage's window; in local mode the JVM is driver and executor.",
        "",
        *_size_rows(results),
        "",
    ]
    target = out_dir / "scaling.md"
    old = target.read_text() if target.exists() else ""
    notes = old[old.index(NOTES) :] if NOTES in old else NOTES + "\n"
    target.write_text("\n".join(lines) + "\n" + notes)
