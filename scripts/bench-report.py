#!/usr/bin/env python3
"""Turns criterion's results into the benchmark report: a Markdown table and
an SVG chart, with the machine and the date they were measured on.

    cargo bench --bench auth_layer --bench token_cache --bench retry \
        --bench cold_start --bench loopback -- --warm-up-time 1 --measurement-time 3
    python3 scripts/bench-report.py            # writes docs/benchmarks.md and docs/benchmarks.svg

Reads target/criterion/**/new/{benchmark,estimates}.json. Only the Python
standard library is used; the SVG is written by hand.
"""

import argparse
import datetime
import html
import json
import os
import platform
import subprocess
from pathlib import Path

# What each group compares, its baseline, and how to read it. Groups that
# are not listed here are reported against their first benchmark.
GROUPS = {
    "per_request": {
        "title": "Per-request overhead of the auth layer",
        "baseline": "static_header",
        "about": "One request through the layer to a no-op service with a cached token, against "
        "tower-http's `SetRequestHeaderLayer` with a static header (the floor) and the locking "
        "strategies other libraries use (a `Mutex`, a tokio `RwLock` read in a boxed future).",
    },
    "read/1-thread": {
        "title": "Reading the cached token, one thread",
        "baseline": "static held header clone",
        "about": "Reading the token's header from the cache against cloning a header held as is "
        "and against a `Mutex` or tokio `RwLock` around it.",
    },
    "read/2-threads": {
        "title": "Reading the cached token, two threads at once",
        "baseline": "static held header clone",
        "about": "The same reads from two threads at once (per-thread time).",
    },
    "retry_overhead": {
        "title": "Retry layer on a request that succeeds",
        "baseline": "bare",
        "about": "The copy kept for a replay, the budget deposit and the cool-down check, "
        "against the bare service.",
    },
    "cold_start": {
        "title": "Cold-start storm: N callers, no token yet",
        "baseline": "naive_per_call",
        "about": "N callers arrive at once on a cache with no token; time until all are served, "
        "against the naive client that sends a token request per call (token endpoint: the mock "
        "CXone in memory, so every request is real work without a network). Below 1 is faster.",
    },
    "loopback": {
        "title": "End to end on loopback: requests per second",
        "baseline": "reqwest_static_header",
        "about": "A hyper server on 127.0.0.1; `reqwest` through `CxoneRetryLayer` + "
        "`CxoneAuthLayer` against `reqwest` setting a static header itself; 32 requests in "
        "flight, 256 per iteration. Client and server share the machine.",
    },
}
ORDER = list(GROUPS)

# Benchmarks of the crate itself (coloured apart in the chart).
OURS = ("cxone", "Token", "retry_layer", "reqwest_retry_auth_stack")


def load(criterion_dir):
    """Every benchmark's id, mean and 95% interval (ns) and throughput."""
    results = []
    for estimates in sorted(Path(criterion_dir).glob("**/new/estimates.json")):
        meta_path = estimates.with_name("benchmark.json")
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        est = json.loads(estimates.read_text())
        mean = est["mean"]
        throughput = meta.get("throughput") or {}
        function = meta.get("function_id") or ""
        value = meta.get("value_str") or ""
        if not function:
            # `BenchmarkId::from_parameter(name)`: the parameter names it.
            function, value = value, ""
        results.append(
            {
                "group": meta["group_id"],
                "function": function,
                "value": value,
                "mean": mean["point_estimate"],
                "low": mean["confidence_interval"]["lower_bound"],
                "high": mean["confidence_interval"]["upper_bound"],
                "elements": throughput.get("Elements"),
            }
        )
    return results


def grouped(results):
    """Results by group, groups in report order; within a group by
    parameter (numerically when it is a number), the baseline first."""
    groups = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    names = sorted(groups, key=lambda g: (ORDER.index(g) if g in ORDER else len(ORDER), g))

    def row_key(group, row):
        value = row["value"]
        number = float(value) if value.replace(".", "", 1).isdigit() else float("inf")
        baseline = GROUPS.get(group, {}).get("baseline")
        return (number, value, row["function"] != baseline, row["function"].lower())

    return [(name, sorted(groups[name], key=lambda r: row_key(name, r))) for name in names]


def baseline_for(group, rows, row):
    """The row this one is compared with: the group's baseline at the same
    parameter, else the group's first row."""
    wanted = GROUPS.get(group, {}).get("baseline")
    for candidate in rows:
        if candidate["function"] == wanted and candidate["value"] == row["value"]:
            return candidate
    return rows[0]


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(per_second):
    if per_second >= 1e6:
        return f"{per_second / 1e6:.3g} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.3g} k/s"
    return f"{per_second:.3g}/s"


def label(row):
    return f"{row['function']} ({row['value']})" if row["value"] else row["function"]


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    try:
        rustc = subprocess.run(
            ["rustc", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rustc = "rustc (version unknown)"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "os": f"{platform.system()} {platform.machine()}",
        "rustc": rustc,
    }


def table(groups):
    lines = [
        "| Group | Benchmark | Mean | 95% interval | vs baseline | Throughput |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for group, rows in groups:
        for row in rows:
            base = baseline_for(group, rows, row)
            ratio = row["mean"] / base["mean"]
            rate = (
                fmt_rate(row["elements"] / (row["mean"] / 1e9)) if row["elements"] else ""
            )
            marker = " (baseline)" if base is row else ""
            lines.append(
                f"| {group} | {label(row)}{marker} | {fmt_time(row['mean'])} "
                f"| {fmt_time(row['low'])} – {fmt_time(row['high'])} | {ratio:.2f}× | {rate} |"
            )
    return "\n".join(lines)


def svg(groups, info, date):
    """One panel per group: a bar per benchmark, on the panel's own scale,
    labelled with its mean and its ratio to the baseline."""
    width, left, right = 900, 300, 190
    bar_h, gap, head = 18, 6, 44
    y = 56
    parts = []
    for group, rows in groups:
        meta = GROUPS.get(group, {})
        parts.append(
            f'<text x="16" y="{y + 18}" class="title">{html.escape(meta.get("title", group))}</text>'
        )
        y += head - 10
        scale = max(r["mean"] for r in rows)
        for row in rows:
            base = baseline_for(group, rows, row)
            ratio = row["mean"] / base["mean"]
            length = max(1.0, (width - left - right) * row["mean"] / scale)
            if base is row:
                colour = "#8a8f98"
            elif row["function"].startswith(OURS):
                colour = "#2f6fd6"
            else:
                colour = "#d8b27a"
            parts.append(
                f'<text x="{left - 8}" y="{y + 13}" class="label">{html.escape(label(row))}</text>'
            )
            parts.append(
                f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}" rx="2"/>'
            )
            text = f"{fmt_time(row['mean'])}  ({ratio:.2f}×)"
            if row["elements"]:
                text += f"  {fmt_rate(row['elements'] / (row['mean'] / 1e9))}"
            parts.append(
                f'<text x="{left + length + 6:.1f}" y="{y + 13}" class="value">{html.escape(text)}</text>'
            )
            y += bar_h + gap
        y += 14
    height = y + 30
    caption = (
        f"{info['cores']} cores, {info['cpu']}, {info['memory']}; {info['rustc']}; {date}. "
        "Grey: baseline; blue: cxone-auth; tan: other strategies."
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
            "<style>.title{font-size:15px;font-weight:bold;fill:#222}"
            ".label{font-size:12px;fill:#333;text-anchor:end}"
            ".value{font-size:12px;fill:#333}.caption{font-size:11px;fill:#555}"
            ".head{font-size:18px;font-weight:bold;fill:#111}</style>",
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
            '<text x="16" y="30" class="head">cxone-auth benchmarks (mean time per iteration; '
            "each panel on its own scale)</text>",
            *parts,
            f'<text x="16" y="{height - 12}" class="caption">{html.escape(caption)}</text>',
            "</svg>",
            "",
        ]
    )


def find(groups, group, function, value=""):
    for name, rows in groups:
        if name == group:
            for row in rows:
                if row["function"] == function and row["value"] == value:
                    return row
    return None


def highlights(groups):
    """A sentence per comparison the report is about, from the numbers."""
    lines = []
    static, layer = find(groups, "per_request", "static_header"), find(groups, "per_request", "cxone_auth")
    mutex = find(groups, "per_request", "mutex")
    if static and layer:
        text = (
            f"- The auth layer with a cached token adds {layer['mean'] - static['mean']:.0f} ns per "
            f"request over a static header ({layer['mean'] / static['mean']:.2f}× the floor, "
            f"host check and 401 watch included)"
        )
        if mutex:
            text += f"; a `Mutex` read costs {mutex['mean'] / static['mean']:.2f}× on one thread"
        lines.append(text + ".")
    reader = find(groups, "read/2-threads", "TokenReader::cached_header")
    locked = find(groups, "read/2-threads", "std Mutex read + clone")
    rw = find(groups, "read/2-threads", "tokio RwLock read + clone")
    if reader and locked and rw:
        lines.append(
            f"- With two threads reading at once, the layer's read of the token takes "
            f"{reader['mean']:.0f} ns: {reader['mean'] / locked['mean']:.2f}× a `Mutex` and "
            f"{reader['mean'] / rw['mean']:.2f}× a tokio `RwLock` (below 1 is faster)."
        )
    for callers in ("100", "1000"):
        ours, naive = find(groups, "cold_start", "cxone_auth", callers), find(
            groups, "cold_start", "naive_per_call", callers
        )
        if ours and naive:
            lines.append(
                f"- {callers} callers on a cold cache are all served in {fmt_time(ours['mean'])} "
                f"with one token request, {naive['mean'] / ours['mean']:.0f}× sooner than "
                f"{callers} token requests ({fmt_time(naive['mean'])})."
            )
    plain, stack = find(groups, "loopback", "reqwest_static_header"), find(
        groups, "loopback", "reqwest_retry_auth_stack"
    )
    if plain and stack and plain["elements"]:
        rate = lambda r: r["elements"] / (r["mean"] / 1e9)
        lines.append(
            f"- End to end on loopback, reqwest through retry + auth completes "
            f"{fmt_rate(rate(stack))[:-2]} requests per second against "
            f"{fmt_rate(rate(plain))[:-2]} with a static header "
            f"({(1 - rate(stack) / rate(plain)) * 100:.0f}% fewer), on a machine that also runs "
            "the server."
        )
    bare, retry = find(groups, "retry_overhead", "bare"), find(groups, "retry_overhead", "retry_layer")
    if bare and retry:
        lines.append(
            f"- The retry layer costs a request that succeeds {retry['mean'] - bare['mean']:.0f} ns "
            "(the replay copy, the budget, the cool-down check)."
        )
    return "\n".join(lines)


def markdown(groups, info, date, chart_name):
    about = "\n".join(
        f"- **{GROUPS[g]['title']}** (`{g}`): {GROUPS[g]['about']}"
        for g, _ in groups
        if g in GROUPS
    )
    return f"""## Benchmarks

![cxone-auth benchmarks]({chart_name})

Measured on {date}: {info['cores']} cores ({info['cpu']}), {info['memory']} of memory,
{info['os']}, {info['rustc']}. Short runs (`--warm-up-time 1 --measurement-time 3`) on a
shared machine: compare rows within a group, not across machines.

{highlights(groups)}

{about}

{table(groups)}

"vs baseline" divides each mean by its group's baseline at the same parameter: for
`per_request`, `read/*` and `loopback` the floor (a static header), for `retry_overhead`
the bare service, for `cold_start` the naive per-call fetch (below 1 is faster).
Throughput is requests per second (`loopback`) or callers served per second (`cold_start`).

Reproduce:

```sh
cargo bench --bench auth_layer --bench token_cache --bench retry \\
    --bench cold_start --bench loopback -- --warm-up-time 1 --measurement-time 3
python3 scripts/bench-report.py
```
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", default="target/criterion", help="criterion's output folder")
    parser.add_argument("--out", default="docs", help="where to write benchmarks.md and benchmarks.svg")
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help="the date stated")
    args = parser.parse_args()

    results = load(args.criterion)
    if not results:
        raise SystemExit(f"no criterion results under {args.criterion}: run the benches first")
    groups = grouped(results)
    info = machine()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.svg").write_text(svg(groups, info, args.date))
    (out / "benchmarks.md").write_text(markdown(groups, info, args.date, "benchmarks.svg"))
    print(table(groups))
    print(f"\nwrote {out / 'benchmarks.md'} and {out / 'benchmarks.svg'}")


if __name__ == "__main__":
    main()
