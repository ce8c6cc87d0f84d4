#!/usr/bin/env python3
"""Build the copy-review sheet (docs/copy-review/sheet.md) from offline variants of the bundled example.

Reproducible: a fixed customer seed and count, a fixed as-of date, embedded defaults (offline provider,
bundled corpus) and a fresh temporary store. The campaign's tones are used as configured; when the run
yields fewer than 30 distinct segment x tone variants, the same run is repeated with a copy of the bundled
campaign that adds the `premium` tone, and variants are taken in a fixed order until there are 30.

Usage: scripts/copy-sheet.py [--out docs/copy-review/sheet.md]
Needs cargo; honours CARGO_TARGET_DIR like the Makefile.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_CUSTOMERS = 100_000
CUSTOMER_SEED = 7
AS_OF = "2026-11-30"
WANT = 30
EXTRA_TONE = "premium"


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def cpo_binary(tmp):
    """This checkout's cpo, copied out of the target directory straight after the build: a target directory
    shared with other checkouts may have its `debug/cpo` replaced by their build at any moment."""
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    # A fresh build does not copy the binary to debug/cpo again; touching the entry point makes cargo relink
    # and copy this checkout's binary there.
    (ROOT / "cli" / "src" / "main.rs").touch()
    sh("cargo", "build", "-q", "-p", "cpo", cwd=ROOT)
    copy = Path(tmp) / "cpo"
    shutil.copy2(Path(target) / "debug" / "cpo", copy)
    return str(copy)


def run_campaign(cpo, customers, campaign, tmp, label):
    store_dir = Path(tmp) / f"store-{label}"
    store_dir.mkdir()
    sh(cpo, "run", "--input", customers, "--store", f"file://{store_dir}", "--campaign", campaign,
       "--as-of", AS_OF, "--json", stdout=subprocess.DEVNULL, cwd=tmp)
    runs = sorted(glob.glob(str(store_dir / "runs" / "*")))
    if len(runs) != 1:
        sys.exit(f"expected one run in {store_dir}, found {len(runs)}")
    run = Path(runs[0])
    retrieval = json.loads((run / "retrieval.json").read_text())
    passages = {}
    for seg in retrieval["segments"]:
        for h in seg["hits"]:
            passages[h["doc_id"]] = (h["title"], " ".join(p["text"] for p in h["passages"]))
    segments = {s["slug"]: s for s in json.loads((run / "segments.json").read_text())["segments"]}
    variants = []
    for f in sorted((run / "variants").glob("*.json")):
        for v in json.loads(f.read_text())["variants"]:
            variants.append(v)
    return variants, passages, segments


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "copy-review" / "sheet.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cpo = cpo_binary(tmp)
        customers = str(Path(tmp) / "customers.csv")
        sh(cpo, "gen", "customers", "--n", str(N_CUSTOMERS), "--seed", str(CUSTOMER_SEED), "--out", customers)
        bundled = str(ROOT / "examples" / "campaigns" / "weekly.yaml")
        variants, passages, segments = run_campaign(cpo, customers, bundled, tmp, "bundled")
        how = "one run of the bundled campaign (`examples/campaigns/weekly.yaml`)"
        seen = {(v["segment"], v["tone"]) for v in variants}
        if len(seen) < WANT:
            # More tones, same segments: the bundled campaign with one extra tone in `tones` and `weights`.
            text = Path(bundled).read_text()
            text = text.replace("tones: [urgent, informational, friendly]",
                                f"tones: [urgent, informational, friendly, {EXTRA_TONE}]")
            text = text.replace("friendly: 0.25}", f"friendly: 0.25, {EXTRA_TONE}: 0.25}}")
            extra = Path(tmp) / "weekly-premium.yaml"
            extra.write_text(text)
            more, p2, s2 = run_campaign(cpo, customers, str(extra), tmp, "premium")
            passages.update(p2)
            segments.update(s2)
            extra_variants = [v for v in more if v["tone"] == EXTRA_TONE]
            variants += extra_variants
            how += (f", then the same campaign with the extra tone `{EXTRA_TONE}` added to `tones` and `weights` "
                    f"(same customers, same as-of date) for {len(extra_variants)} more segment x tone variants")
    order = {"urgent": 0, "informational": 1, "friendly": 2, EXTRA_TONE: 3}
    variants.sort(key=lambda v: (order.get(v["tone"], 9), v["variant_id"]))
    # Spread across tones: take round-robin by tone so every tone is represented when trimming to 30.
    by_tone = {}
    for v in variants:
        by_tone.setdefault(v["tone"], []).append(v)
    picked = []
    while len(picked) < WANT and any(by_tone.values()):
        for tone in sorted(by_tone, key=lambda t: order.get(t, 9)):
            if by_tone[tone] and len(picked) < WANT:
                picked.append(by_tone[tone].pop(0))
    picked.sort(key=lambda v: (v["segment"], order.get(v["tone"], 9)))
    write_sheet(args.out, picked, passages, segments, how, len(variants))


def cell(s):
    return s.replace("|", "\\|").replace("\n\n", "<br><br>").replace("\n", "<br>")


def write_sheet(out, picked, passages, segments, how, total):
    lines = [
        "# Copy review sheet: offline composer",
        "",
        "Generated by `scripts/copy-sheet.py` — do not edit by hand; rerun it after changing the composer.",
        "",
        f"- Input: `cpo gen customers --n {N_CUSTOMERS} --seed {CUSTOMER_SEED}`, `cpo run --as-of {AS_OF}` on a "
        "fresh temporary `file://` store, embedded defaults (offline provider, bundled corpus `examples/content/`).",
        f"- Variants: {how}; {total} variants in all, {len(picked)} shown (round-robin by tone, then sorted by "
        "segment).",
        "- Judge each variant against `docs/copy-review/rubric.md`. Write `pass` or `fail: <criterion> — <why>` "
        "in the Verdict line. The cited passages below each variant are the only facts it may use.",
        "- `{{first_name}}` is a merge field filled per customer (the bundled file has the column).",
        "",
    ]
    for i, v in enumerate(picked, 1):
        seg = segments.get(v["variant_id"].rsplit("-", 1)[0], {})
        profile = ""
        if seg:
            profile = (f" — recency score {seg['r_mean']:.1f}/5, frequency score {seg['f_mean']:.1f}/5, "
                       f"{seg['size']} customers")
        lines += [
            f"## {i}. {v['segment']} × {v['tone']}",
            "",
            f"Segment: **{v['segment']}**{profile}. Tone: **{v['tone']}**. Status from the validator: "
            f"`{v['status']}`{' — ' + '; '.join(v.get('reasons', [])) if v.get('reasons') else ''}.",
            "",
            "| Field | Text |",
            "|---|---|",
            f"| Subject | {cell(v['subject'])} |",
            f"| Preheader | {cell(v.get('preheader', ''))} |",
            f"| Body | {cell(v['body'])} |",
            f"| CTA | {cell(v['cta'])} |",
            "",
            "Cited passages:",
            "",
        ]
        for doc in dict.fromkeys(c["doc_id"] for c in v["citations"]):
            title, text = passages.get(doc, ("?", "(passage not found)"))
            lines.append(f"- `{doc}` *{title}*: {text}")
        lines += ["", "Verdict: ", ""]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines))
    print(f"wrote {out}: {len(picked)} variants")


if __name__ == "__main__":
    main()
