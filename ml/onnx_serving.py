"""Serving a Hugging Face encoder through ONNX Runtime: the same mean-pooled, L2-normalised
vectors as `ml.encoder.Encoder`, about twice as fast for one short text on CPU.

The graph is exported in memory from an already-loaded torch model (whose weights were read from
verified safetensors), so no new model file is ever written or read. No Django imports.
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .encoder import clip_texts

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _pooled_module(encoder):
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return Pooled().eval()  # eval: a graph exported in training mode keeps its dropout


def _hidden_module(encoder):
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state

    return Hidden().eval()


def export(encoder, tokenizer, *, int8: bool = False, hidden: bool = False) -> bytes:
    """The ONNX graph (bytes) of `encoder` + mean pooling + normalisation, dynamic in batch and
    length; with `hidden`, of `encoder` alone (its last hidden state: what span versions read)."""
    import torch

    example = tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    if "token_type_ids" not in example:
        example["token_type_ids"] = torch.zeros_like(example["input_ids"])
    buffer = io.BytesIO()
    dynamic = {name: {0: "batch", 1: "length"} for name in INPUTS}
    # Traced with eager attention: the SDPA path exports as a generic subgraph that ONNX Runtime
    # runs markedly slower on CPU (see docs/benchmarks.md, section "Predict API").
    attention = getattr(encoder.config, "_attn_implementation", None)
    try:
        if attention and attention != "eager" and hasattr(encoder, "set_attn_implementation"):
            encoder.set_attn_implementation("eager")
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            module, outputs = ((_hidden_module(encoder), {"vectors": {0: "batch", 1: "length"}}) if hidden
                               else (_pooled_module(encoder), {"vectors": {0: "batch"}}))
            torch.onnx.export(module, tuple(example[name] for name in INPUTS), buffer,
                              input_names=list(INPUTS), output_names=["vectors"],
                              dynamic_axes={**dynamic, **outputs}, opset_version=17, dynamo=False)
    finally:
        if attention and encoder.config._attn_implementation != attention:
            encoder.set_attn_implementation(attention)
    graph = buffer.getvalue()
    return _quantized(graph) if int8 else graph


def _quantized(graph: bytes) -> bytes:
    """Dynamic int8 quantisation of the graph's MatMuls (ONNX Runtime's tool works on files)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "model.onnx"), Path(folder, "model.int8.onnx")
        source.write_bytes(graph)
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        return target.read_bytes()


class OnnxEncoder:
    """`encode(texts)` like `ml.encoder.Encoder`, run by ONNX Runtime on the CPU."""

    def __init__(self, encoder, tokenizer, *, max_length: int, threads: int | None = None, int8: bool = False,
                 hidden: bool = False):
        import onnxruntime

        self.tokenizer, self.max_length = tokenizer, max_length
        self.dim = encoder.config.hidden_size
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("LABELLOOP_TORCH_THREADS") or 0) or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: a web worker idles between requests, and spinning threads
        # take cores from the process's other request threads and from the database.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(export(encoder, tokenizer, int8=int8, hidden=hidden), options,
                                                    providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Unit vectors for `texts`, in their order: length-sorted batches, each padded to its longest."""
        texts = clip_texts(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="np")
            feed = {name: batch[name].astype(np.int64) for name in INPUTS if name in batch}
            feed.setdefault("token_type_ids", np.zeros_like(feed["input_ids"]))
            out[idx] = self.session.run(None, feed)[0]
        return out

    def hidden_states(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                      token_type_ids: np.ndarray | None = None) -> np.ndarray:
        """The last hidden state (batch, length, dim) of padded token ids (a `hidden` export);
        token types zero unless given (a fine-tuned tagger's casing, ml.token_finetune)."""
        types = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask,
                                       "token_type_ids": types})[0]
