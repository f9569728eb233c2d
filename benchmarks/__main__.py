"""``python -m benchmarks``: Labeeb against the reference, same run, same model, same pictures.

The model is SmolVLM-256M's real architecture with random weights (built once from the
config/processor/tokenizer files, see labeeb.testing.build_random_smolvlm): random weights
give meaningless text, so this measures speed and memory only. Both variants get a fixed
output length (min_new_tokens = max_new_tokens), and the benchmark checks that both produced
the same greedy tokens, i.e. that Labeeb's speed does not change the answers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import markdown, plot, table

HERE = Path(__file__).resolve().parent
SCENARIOS = ["fresh_screenshot", "follow_up", "changed_window", "document_3_pages", "voice_turn"]
TARGETS = {  # Labeeb / reference, from the performance issue
    ("fresh_screenshot", "ttft"): 0.33,
    ("follow_up", "ttft"): 0.05,
    ("changed_window", "ttft"): 0.2,
    ("voice_turn", "ttft"): 0.35,  # end of the spoken question -> first audio out
}


def model_dir(path: str | None) -> str:
    if path:
        return path
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labeeb" / "smolvlm-256m-random"
    if not (cache / "model.safetensors").is_file():
        from labeeb.testing import build_random_smolvlm

        print(f"building the random-weights SmolVLM-256M in {cache} ...", file=sys.stderr)
        build_random_smolvlm(cache)
    return str(cache)


#: Scenarios llama.cpp is measured in (the voice turn needs Labeeb's listening loop).
PEER_SCENARIOS = ["fresh_screenshot", "follow_up", "changed_window", "document_3_pages"]


def run_worker(variant: str, scenario: str, model: str, runs: int, tokens: int, encoder: str = "torch",
               grouped: bool = False, look: bool = True, first: int = 0, idle: float = 0.0,
               decoder: str = "torch") -> dict:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "LABEEB_BENCH_ENCODER": encoder, "LABEEB_BENCH_GROUPED": "1" if grouped else "0",
           "LABEEB_BENCH_DECODER": decoder,
           "LABEEB_BENCH_LOOK": "1" if look else "0", "LABEEB_BENCH_IDLE": str(idle)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", variant, scenario, model, str(runs), str(tokens), str(first)],
        capture_output=True, text=True, env=env, cwd=HERE.parent,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant}/{scenario} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def against_peer(lab: dict, peer: dict) -> dict:
    """llama.cpp's medians, and Labeeb's as ratios of them."""
    out = {}
    for key in ("ttft", "total", "decode_tps"):
        p, l = median(peer["runs"], key), median(lab["runs"], key)
        out[key] = {"llama.cpp": p, "labeeb": l, "ratio": (l / p) if p and l else None}
    out["peak_rss_mb"] = {"llama.cpp": peer["peak_rss_mb"], "labeeb": lab["peak_rss_mb"],
                          "ratio": lab["peak_rss_mb"] / peer["peak_rss_mb"]}
    return out


def over_api(ref: dict, lab: dict, api: dict) -> dict:
    """Labeeb over its API against Labeeb in process and against the reference."""
    out = {}
    for key in ("ttft", "total"):
        a, l, r = median(api["runs"], key), median(lab["runs"], key), median(ref["runs"], key)
        out[key] = {"api": a, "in_process": l, "reference": r, "vs_in_process": a / l if a and l else None,
                    "vs_reference": a / r if a and r else None}
    out["peak_rss_mb"] = {"api": api["peak_rss_mb"], "in_process": lab["peak_rss_mb"]}
    return out


def summarise(ref: dict, lab: dict, peer: dict | None = None, api: dict | None = None) -> dict:

    out = {}
    for key in ("ttft", "total", "decode_tps"):
        r, l = median(ref["runs"], key), median(lab["runs"], key)
        out[key] = {"reference": r, "labeeb": l, "ratio": (l / r) if r and l else None,
                    "runs": {"reference": [row[key] for row in ref["runs"]], "labeeb": [row[key] for row in lab["runs"]]}}
    out["peak_rss_mb"] = {"reference": ref["peak_rss_mb"], "labeeb": lab["peak_rss_mb"],
                          "ratio": lab["peak_rss_mb"] / ref["peak_rss_mb"]}
    same = [a["tokens"] == b["tokens"] for a, b in zip(ref["runs"], lab["runs"])]
    out["same_tokens"] = f"{sum(same)}/{len(same)}"
    looked = [r["looked_tiles"] for r in lab["runs"] if "looked_tiles" in r]
    if looked:  # voice turn: tiles encoded while the question was spoken
        out["looked_tiles"] = looked
    if peer is not None:
        out["llama.cpp"] = against_peer(lab, peer)
    if api is not None:
        out["api"] = over_api(ref, lab, api)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per scenario (median reported)")
    parser.add_argument("--tokens", type=int, default=32, help="output tokens per answer")
    parser.add_argument("--model", help="model directory (default: build random-weights SmolVLM-256M)")
    parser.add_argument("--scenarios", nargs="*", default=SCENARIOS, choices=SCENARIOS)
    parser.add_argument("--encoder", default="torch", choices=["torch", "openvino"],
                        help="Labeeb's vision.encoder (openvino: pip install openvino)")
    parser.add_argument("--grouped-attention", action="store_true", help="Labeeb's vision.grouped_attention = true")
    parser.add_argument("--no-look", action="store_true",
                        help="voice turn without looking at the screen while listening (screen.look_while_listening = false)")
    parser.add_argument("--idle-look", type=float, default=0.0, metavar="SECONDS",
                        help="voice turn: the screen is on display this long before the question is spoken, and "
                             "Labeeb looks at it meanwhile (listen.prepare_while_idle)")
    parser.add_argument("--interleave", action="store_true",
                        help="one worker per run, reference and Labeeb alternating, so the machine's drift "
                             "hits both alike (slower: each worker loads the model)")
    parser.add_argument("--decoder", default="torch", choices=["torch", "llama.cpp"],
                        help="Labeeb's vision.decoder (llama.cpp: pip install llama-cpp-python)")
    parser.add_argument("--llama-cpp-source", metavar="DIR",
                        help="llama.cpp's source (for its GGUF converter): measures llama.cpp as a peer "
                             "when llama-cpp-python is installed (also LLAMA_CPP_SOURCE)")
    parser.add_argument("--api", action="store_true",
                        help="also ask Labeeb over its API (a real labeeb serve, the openai SDK, streamed)")
    parser.add_argument("--out", default=str(HERE / "results"), help="where latest.json and latest.png go")
    args = parser.parse_args()
    if args.llama_cpp_source:
        os.environ["LLAMA_CPP_SOURCE"] = args.llama_cpp_source
    from benchmarks.llamacpp_peer import missing

    peer_missing = missing()
    if peer_missing:
        print(f"llama.cpp is not measured: {peer_missing}", file=sys.stderr)

    model = model_dir(args.model)
    if args.encoder == "openvino":  # the one-time conversion happens here, not in a timed run
        run_worker("labeeb", "prepare", model, 0, args.tokens, args.encoder)

    def worker(variant: str, scenario: str, runs: int, first: int = 0) -> dict:
        print(f"[{time.strftime('%H:%M:%S')}] {scenario}: {variant} ...", file=sys.stderr, flush=True)
        if variant in ("reference", "llama.cpp"):  # (the API's server reads the decoder from the environment)
            return run_worker(variant, scenario, model, runs, args.tokens, first=first)
        return run_worker(variant, scenario, model, runs, args.tokens, args.encoder, args.grouped_attention,
                          not args.no_look, first, args.idle_look, args.decoder)

    results = {}
    for scenario in args.scenarios:
        variants = ["reference", "labeeb"] + (["llama.cpp"] if not peer_missing and scenario in PEER_SCENARIOS else [])
        variants += ["api"] if args.api and scenario in PEER_SCENARIOS else []
        if not args.interleave:
            done = {variant: worker(variant, scenario, args.runs) for variant in variants}
        else:
            runs: dict[str, list[dict]] = {variant: [] for variant in variants}
            for run in range(args.runs):
                for variant in variants if run % 2 == 0 else variants[::-1]:
                    runs[variant].append(worker(variant, scenario, 1, run))
            done = {variant: {"runs": [row for w in ws for row in w["runs"]],
                              "peak_rss_mb": max(w["peak_rss_mb"] for w in ws)} for variant, ws in runs.items()}
        results[scenario] = summarise(done["reference"], done["labeeb"], done.get("llama.cpp"), done.get("api"))

    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "model": "SmolVLM-256M-Instruct architecture, random weights",
        "runs": args.runs, "interleaved": args.interleave, "tokens": args.tokens, "encoder": args.encoder,
        "grouped_attention": args.grouped_attention, "decoder": args.decoder, "llama.cpp": peer_missing or "measured",
        "look_while_listening": not args.no_look, "idle_look_seconds": args.idle_look,
        "targets": {f"{s}.{m}": t for (s, m), t in TARGETS.items()},
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2))
    (out / "latest.md").write_text(markdown(report, TARGETS) + "\n")
    print(table(report, TARGETS))
    try:
        plot(report, out / "latest.png")
    except ImportError:
        print("(install matplotlib for the plot: pip install matplotlib)", file=sys.stderr)
    print(f"\nwritten: {out / 'latest.json'}, {out / 'latest.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
