"""Piper's ONNX graph, patched for exact word times and seeded (reproducible) noise."""

from __future__ import annotations

from pipeline.tts.base import SynthesisError


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
