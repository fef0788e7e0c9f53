"""Tokenizer throughput: our RobertaTokenizer / RobertaTokenizerFast against transformers v4's.

    python -m benchmarks.tokenizers_bench [--mb 10] [--batch-size 1000] [--repeats 3]

The text is English documentation that ships with CPython: `pydoc_data.topics` (split into
paragraphs) and the docstrings of the standard library, repeated until it reaches --mb megabytes.
Each tokenizer encodes it in batches of --batch-size documents, in two workloads: plain
(input_ids + attention_mask) and truncated/padded to 512 tokens. Every measurement starts from a
freshly loaded tokenizer, so caches warm up inside the timed run as they would in real use;
tokens/s counts real tokens (pads excluded).

transformers is not a dependency: its side runs in a worker process with the reference venv
(`make bench-env` creates .bench-env), which reads the same documents from a temp file; its
measurements alternate with ours. Both sides hash the ids they produce, so the table says
whether they tokenized alike.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".bench-env" / "bin" / "python"
TOKENIZER_DIR = ROOT.parent / "shared" / "data" / "roberta-base-tokenizer"
WORKLOADS = {
    "plain": {},
    "trunc512+pad": {"truncation": True, "max_length": 512, "padding": True},
}


def corpus_documents(megabytes: float) -> list[str]:
    """pydoc topics (by paragraph) and stdlib docstrings, repeated up to `megabytes` of UTF-8."""
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    unique = [p for name in sorted(topics) for p in topics[name].split("\n\n") if p.strip()]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(stdlib.glob("*.py")) + sorted(p for p in stdlib.glob("*/*.py") if p.parts[-2] not in ("test", "site-packages"))
    for path in sources:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    unique.append(doc)
    target, docs, size = int(megabytes * 1e6), [], 0
    while size < target:
        for doc in unique:
            docs.append(doc)
            size += len(doc.encode())
            if size >= target:
                break
    return docs


def measure(make_tokenizer, docs: list[str], kwargs: dict, batch_size: int) -> dict:
    """Seconds to encode `docs` with a fresh tokenizer, its token count (pads excluded) and an ids hash."""
    tokenizer = make_tokenizer()
    seconds, ids, tokens = 0.0, [], 0
    for start in range(0, len(docs), batch_size):
        batch = docs[start:start + batch_size]
        began = time.perf_counter()
        encoded = tokenizer(batch, **kwargs)
        seconds += time.perf_counter() - began
        ids += encoded["input_ids"]
        tokens += sum(map(sum, encoded["attention_mask"]))
    return {"seconds": seconds, "tokens": tokens, "ids_sha": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:12]}


def _reference_worker(documents_file: str, tokenizer_dir: str, batch_size: int) -> None:
    """Runs under the reference venv: answers each 'kind workload' line on stdin with one JSON line."""
    import logging

    import transformers

    logging.getLogger("transformers").setLevel(logging.ERROR)
    docs = json.loads(Path(documents_file).read_text(encoding="utf-8"))
    kinds = {
        "slow": lambda: transformers.RobertaTokenizer.from_pretrained(tokenizer_dir),
        "fast": lambda: transformers.RobertaTokenizerFast.from_pretrained(tokenizer_dir),
    }
    print(json.dumps({"implementation": f"transformers {transformers.__version__}"}), flush=True)
    for line in sys.stdin:
        kind, workload = line.split()
        print(json.dumps(measure(kinds[kind], docs, WORKLOADS[workload], batch_size)), flush=True)


class _Reference:
    """The reference worker process; measurements alternate with ours so that load on a shared
    machine hits both sides alike."""

    def __init__(self, python: Path, documents_file: Path, tokenizer_dir: Path, batch_size: int):
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.tokenizers_bench import "
                "_reference_worker as w; w(sys.argv[2], sys.argv[3], int(sys.argv[4]))")
        self.process = subprocess.Popen(
            [str(python), "-c", code, str(ROOT), str(documents_file), str(tokenizer_dir), str(batch_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        self.implementation = self._answer()["implementation"]

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the reference worker stopped (exit code {self.process.wait()}); see its stderr above")
        return json.loads(line)

    def measure(self, kind: str, workload: str) -> dict:
        self.process.stdin.write(f"{kind} {workload}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def run(mb: float = 10.0, batch_size: int = 1000, repeats: int = 3, tokenizer_dir: Path = TOKENIZER_DIR,
        reference_python: Path = REFERENCE_PYTHON) -> list[dict]:
    """Measure ours and (when the reference venv exists) transformers'; one row per tokenizer/workload/side.

    The fast tokenizers run `repeats` times (best kept), the slow ones once. Our rows carry `ratio`
    (our tokens/s over transformers' on the same workload) and `same_ids`.
    """
    from roberta_core.tokenization import RobertaTokenizer
    from roberta_core.tokenization_fast import RobertaTokenizerFast

    if not Path(tokenizer_dir).is_dir():
        raise SystemExit(f"tokenizer files absent: {tokenizer_dir} (the shared data folder)")
    docs = corpus_documents(mb)
    size = sum(len(d.encode()) for d in docs)
    kinds = {  # v4 loads these files with no length limit, so neither side warns about long documents
        "slow": lambda: RobertaTokenizer.from_pretrained(tokenizer_dir, model_max_length=10**9),
        "fast": lambda: RobertaTokenizerFast.from_pretrained(tokenizer_dir, model_max_length=10**9),
    }
    with tempfile.TemporaryDirectory() as scratch:
        reference = None
        if Path(reference_python).exists():
            documents_file = Path(scratch) / "documents.json"
            documents_file.write_text(json.dumps(docs), encoding="utf-8")
            reference = _Reference(reference_python, documents_file, tokenizer_dir, batch_size)
        else:
            print(f"reference venv missing ({reference_python}), run make bench-env; measuring our side only")
        rows = []
        try:
            for kind, make in kinds.items():
                for workload, kwargs in WORKLOADS.items():
                    best = {}
                    for _ in range(repeats if kind == "fast" else 1):
                        results = {"roberta_core": measure(make, docs, kwargs, batch_size)}
                        if reference is not None:
                            results[reference.implementation] = reference.measure(kind, workload)
                        for side, result in results.items():
                            if side not in best or result["seconds"] < best[side]["seconds"]:
                                best[side] = result
                    side_rows = [{"tokenizer": kind, "implementation": side, "workload": workload,
                                  "mb_per_s": size / 1e6 / r["seconds"], "tokens_per_s": r["tokens"] / r["seconds"], **r}
                                 for side, r in best.items()]
                    if reference is not None:
                        ours, theirs = side_rows
                        ours["ratio"] = ours["tokens_per_s"] / theirs["tokens_per_s"]
                        ours["same_ids"] = ours["ids_sha"] == theirs["ids_sha"]
                    rows += side_rows
        finally:
            if reference is not None:
                reference.close()
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| tokenizer | implementation | workload | MB/s | tokens/s | seconds | ratio ours/ref | same ids |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: (r["tokenizer"], r["workload"], r["implementation"] != "roberta_core")):
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
        same = {True: "yes", False: "NO"}.get(r.get("same_ids"), "")
        lines.append(f"| {r['tokenizer']} | {r['implementation']} | {r['workload']} | {r['mb_per_s']:.2f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['seconds']:.2f} | {ratio} | {same} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes of text (default 10)")
    parser.add_argument("--batch-size", type=int, default=1000, help="documents per call (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs for the fast tokenizers (default 3)")
    args = parser.parse_args(argv)
    rows = run(args.mb, args.batch_size, args.repeats)
    print(f"{args.mb:g} MB of CPython documentation, batches of {args.batch_size}, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
