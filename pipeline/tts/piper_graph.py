"""Piper's ONNX graph, patched for exact word times and seeded (reproducible) noise.

The patch needs the `onnx` package, whose import alone takes seconds in a fresh worker (and
more while a run's other workers start beside it), so a patched model is kept on disk:
`patched_model(...)` writes it once per (model file sha256, PATCH_VERSION) into the cache
folder and every later worker and run loads that file straight into onnxruntime.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipeline.tts.base import SynthesisError

PATCH_VERSION = 1
"""Bump when the patch changes: cached models of an older patch are then not used."""
DEFAULT_CACHE_DIR = "~/.cache/duplexsynth/piper"


def cached_model_path(cache_dir: str, sha256: str) -> Path:
    """One file per source model, our patch and piper-tts's alignment patch (its version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        piper_version = version("piper-tts")
    except PackageNotFoundError:
        piper_version = "none"
    return (Path(cache_dir).expanduser()
            / f"{sha256}-patch{PATCH_VERSION}-piper{piper_version}.onnx")


def patched_model(model_path: str, sha256: str, cache_dir: str | None) -> str | bytes:
    """The patched model as a file path in `cache_dir` (written atomically on first use:
    temporary file, then rename, so racing workers each see a whole file), or as bytes
    when there is no cache folder or it is not writable."""
    if not cache_dir:
        return patched_model_bytes(model_path)
    path = cached_model_path(cache_dir, sha256)
    if path.is_file():
        return str(path)
    data = patched_model_bytes(model_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)  # a shared cache: every user of the node may read it
        os.replace(temporary, path)
    except OSError:  # read-only home, full disk: patch in memory each time, as before
        return data
    return str(path)


def patched_model_bytes(model_path: str) -> bytes:
    """The model with an alignment output and seeded noise inputs `noise_0`, `noise_1`.

    Each RandomNormalLike(x) becomes Reshape(Slice(noise_k, 0, numel(x)), shape(x)); a
    noise input shorter than numel(x) makes the Reshape fail, and the caller retries with
    a longer one (its prefix unchanged, so the retry gives the same audio)."""
    try:
        import onnx
        from onnx import TensorProto, helper
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as error:
        raise SynthesisError(f"tts=piper needs piper-tts[alignment] ({error}); install it with "
                             "pip install -e '.[piper]'") from None
    model = onnx.load(model_path)
    add_alignment_output(model)
    graph = model.graph
    nodes = []
    count = 0
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        name, prefix = f"noise_{count}", f"/seeded_noise_{count}"
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"]))
        nodes += [
            helper.make_node("Shape", [node.input[0]], [f"{prefix}/shape"]),
            helper.make_node("ReduceProd", [f"{prefix}/shape"], [f"{prefix}/numel"], keepdims=1),
            helper.make_node("Constant", [], [f"{prefix}/zero"], value=helper.make_tensor(
                f"{prefix}/zero_value", TensorProto.INT64, [1], [0])),
            helper.make_node("Slice", [name, f"{prefix}/zero", f"{prefix}/numel"],
                             [f"{prefix}/flat"]),
            helper.make_node("Reshape", [f"{prefix}/flat", f"{prefix}/shape"], [node.output[0]]),
        ]
        count += 1
    if count != 2:
        raise SynthesisError(f"piper model {model_path}: expected 2 RandomNormalLike nodes "
                             f"(a VITS export), found {count}")
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()
