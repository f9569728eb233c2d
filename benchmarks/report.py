"""The benchmark's table (text) and plot (PNG)."""

from __future__ import annotations

from pathlib import Path


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def table(report: dict, targets: dict) -> str:
    cpu = report["machine"]
    lines = [f"{report['model']}; {report['tokens']} output tokens; median of {report['runs']} runs"
             f"{' (interleaved)' if report.get('interleaved') else ''}; "
             f"{cpu['cores']} cores, {cpu['platform']}", ""]
    header = f"{'scenario':18} {'metric':12} {'reference':>10} {'labeeb':>10} {'ratio':>7} {'target':>7}"
    lines += [header, "-" * len(header)]
    for scenario, res in report["results"].items():
        for metric, unit in (("ttft", "s"), ("total", "s"), ("decode_tps", "/s"), ("peak_rss_mb", "MB")):
            row = res[metric]
            target = targets.get((scenario, metric))
            if metric == "decode_tps":
                target = 2.0
            if metric == "peak_rss_mb":
                target = 0.8
            lines.append(f"{scenario:18} {metric:12} {_fmt(row['reference'], unit):>10} {_fmt(row['labeeb'], unit):>10} "
                         f"{_fmt(row['ratio'], 'x'):>7} {(f'{target}x' if target else ''):>7}")
        lines.append(f"{scenario:18} {'same tokens':12} {res['same_tokens']:>10}")
        peer = res.get("llama.cpp")
        for metric, unit in (("ttft", "s"), ("decode_tps", "/s"), ("peak_rss_mb", "MB")) if peer else ():
            row = peer[metric]
            target = {"decode_tps": "1.0x", "peak_rss_mb": "1.0x"}.get(metric, "")
            lines.append(f"{scenario:18} {metric:12} {_fmt(row['llama.cpp'], unit):>10} {_fmt(row['labeeb'], unit):>10} "
                         f"{_fmt(row['ratio'], 'x'):>7} {target:>7}  (against llama.cpp)")
        api = res.get("api")
        for metric in ("ttft", "total") if api else ():
            row = api[metric]
            lines.append(f"{scenario:18} {metric:12} {_fmt(row['in_process'], 's'):>10} {_fmt(row['api'], 's'):>10} "
                         f"{_fmt(row['vs_in_process'], 'x'):>7} {'':>7}  (over the API against in process; "
                         f"{_fmt(row['vs_reference'], 'x')} of the reference)")
    if report.get("llama.cpp", "measured") != "measured":
        lines.append(f"llama.cpp not measured: {report['llama.cpp']}")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(report["results"])
    metrics = [("ttft", "time to first token"), ("total", "total time"),
               ("decode_tps", "decode tokens/s"), ("peak_rss_mb", "peak memory")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
    for ax, (metric, title) in zip(axes, metrics):
        ratios = [report["results"][s][metric]["ratio"] or 0 for s in scenarios]
        ax.barh(scenarios, ratios, color=["#2b8a3e" if (r < 1) != (metric == "decode_tps") else "#c92a2a" for r in ratios])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"{title}\n(Labeeb / reference)")
        for y, r in enumerate(ratios):
            ax.text(r, y, f" {r:.2f}x", va="center")
        if ax is not axes[0]:
            ax.set_yticks([])
    fig.suptitle(f"Labeeb vs reference: {report['model']}, {report['machine']['cores']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(report: dict, targets: dict) -> str:
    """The results as a Markdown table, for the README."""
    machine = report["machine"]
    lines = [
        f"Measured on {machine['cores']} cores ({machine['platform']}, Python {machine['python']}); "
        f"{report['model']}; {report['tokens']} output tokens; median of {report['runs']} runs"
        f"{' (interleaved: one process per run, reference and Labeeb alternating)' if report.get('interleaved') else ''}; "
        f"Labeeb's vision encoder: {report.get('encoder', 'torch')}, grouped attention: "
        f"{'on' if report.get('grouped_attention') else 'off'}. "
        "Ratios are Labeeb / reference from the same run.",
        "",
        "| scenario | time to first token | total | decode tokens/s | peak memory | same tokens |",
        "|---|---|---|---|---|---|",
    ]
    for scenario, res in report["results"].items():
        cells = []
        for metric, unit in (("ttft", "s"), ("total", "s"), ("decode_tps", "/s"), ("peak_rss_mb", " MB")):
            row = res[metric]
            target = targets.get((scenario, metric)) or {"decode_tps": 2.0, "peak_rss_mb": 0.8}.get(metric)
            goal = f" (target {target}x)" if target and (metric != "total") else ""
            cells.append(f"{_fmt(row['reference'], unit)} → {_fmt(row['labeeb'], unit)}: **{_fmt(row['ratio'], 'x')}**{goal}")
        lines.append(f"| {scenario.replace('_', ' ')} | " + " | ".join(cells) + f" | {res['same_tokens']} |")
    peers = {scenario: res["llama.cpp"] for scenario, res in report["results"].items() if "llama.cpp" in res}
    if peers:
        lines += ["", f"Against llama.cpp (same model converted to GGUF bf16, in process, same threads; Labeeb's "
                      f"text half: {report.get('decoder', 'torch')}):", "",
                  "| scenario | time to first token | decode tokens/s | peak memory |", "|---|---|---|---|"]
        for scenario, peer in peers.items():
            cells = [f"{_fmt(peer[m]['llama.cpp'], u)} → {_fmt(peer[m]['labeeb'], u)}: **{_fmt(peer[m]['ratio'], 'x')}**"
                     for m, u in (("ttft", "s"), ("decode_tps", "/s"), ("peak_rss_mb", " MB"))]
            lines.append(f"| {scenario.replace('_', ' ')} | " + " | ".join(cells) + " |")
    apis = {scenario: res["api"] for scenario, res in report["results"].items() if "api" in res}
    if apis:
        lines += ["", "Over the API (a real `labeeb serve`, the openai SDK, streamed, base64 PNG) against in process:", "",
                  "| scenario | first token, API | in process | API / in process | API / reference |",
                  "|---|---|---|---|---|"]
        for scenario, api in apis.items():
            row = api["ttft"]
            lines.append(f"| {scenario.replace('_', ' ')} | {_fmt(row['api'], ' s')} | {_fmt(row['in_process'], ' s')} | "
                         f"**{_fmt(row['vs_in_process'], 'x')}** | {_fmt(row['vs_reference'], 'x')} |")
    if "voice_turn" in report["results"]:
        looked = report["results"]["voice_turn"].get("looked_tiles")
        idle = report.get("idle_look_seconds") or 0
        shown = (f"The screen was on display {idle:g} s before the question, and Labeeb looked at it meanwhile "
                 f"(--idle-look) and while the question was spoken" if idle else
                 "Labeeb hears the question in real time and looked at the screen while it was spoken")
        look = (f" {shown} ({', '.join(map(str, looked))} of the screenshot's 13 tiles encoded by the end of "
                f"speech, per run)." if report.get("look_while_listening", True) else
                " Labeeb did not look at the screen while listening (--no-look).")
        lines += ["", "Voice turn: the first column is the end of the spoken question to the first audio out "
                      "(reference: transcribe, generate the whole answer, synthesise it); total is when the answer's "
                      "text is complete." + look]
    return "\n".join(lines)
