"""duplexsynth: synthetic full-duplex conversational speech data.

Import order, lowest layer first. A module imports only from its own layer or the layers
above it in this list, never from a later one, and the import graph has no cycle
(tests/test_import_graph.py checks both, function-level imports included):

1. base     - paths, schema, textnorm, budget, rows (the inter-stage row's keys, codec and
              typed outcomes): import nothing from the package but this layer
2. storage  - storage (local folders and URIs), sink, shard_verify, claim_store, run_lock,
              dataset: the shard format, its checks and the run lock, and the only reader
              of it
3. steps    - scenarios, phenomena_quotas, writers/, prompts, script_check, tts/, corpus,
              timing*, timeline, render, augment*, labels/: what one dialogue goes through,
              free of Ray
4. config   - config (the typed `generate` config), derive (settings computed from it)
5. stages   - stages: the Ray Data stages wrapping the steps; shard_sink: the last one,
              which writes finished shards on a worker
6. driver   - run, stream: the Ray wiring, resumable shards, run.json
7. jobs     - jobs_common (shared job helpers), jobs (generate), card*, publish, exports/,
              evalset, score, dpo, asr_mix, fit_timing, duplex_clips, vad, verify_job:
              entry points that read a finished dataset
8. tools    - cli, __main__, bench, bench_probe, devserver: command line and dev tools
"""

__version__ = "0.1.0"
