"""CPU runtimes for an exported model: OpenVINO first, then ONNX Runtime.

The ONNX file is exported once per weights sha256 and input size, and cached
(``SHIPWATCH_CACHE_DIR``, default ``~/.cache/shipwatch``). OpenVINO runs it in
fp32 (its bf16 default on some CPUs moves boxes by about a pixel), so the
boxes match torch's: tests hold them to 0.5 px, 0.5° and 0.01 in score.
"""

from __future__ import annotations

import enum
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from detector.errors import UsageError

__all__ = ["Backend", "cache_dir", "cpu_backend", "load_runtime"]

#: Runs a (B, H, W, 3) uint8 RGB batch; returns the raw model output.
Forward = Callable[[NDArray[np.uint8]], NDArray[np.float32]]


class Backend(enum.StrEnum):
    AUTO = "auto"
    TORCH = "torch"
    OPENVINO = "openvino"
    ONNXRUNTIME = "onnxruntime"


def cache_dir() -> Path:
    return Path(os.environ.get("SHIPWATCH_CACHE_DIR") or Path.home() / ".cache" / "shipwatch")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def cpu_backend(requested: Backend) -> Backend:
    """The backend to use on the CPU: the requested one, or the fastest installed."""
    if requested is Backend.AUTO:
        if _installed("openvino"):
            return Backend.OPENVINO
        if _installed("onnxruntime"):
            return Backend.ONNXRUNTIME
        return Backend.TORCH
    if requested is not Backend.TORCH and not _installed(requested.value):
        raise UsageError(f"--backend {requested.value}: the package is not installed; pip install {requested.value}")
    return requested


def load_runtime(backend: Backend, onnx_path: Path, size: int, threads: int | None = None) -> Forward:
    """A function running the ONNX model on uint8 RGB batches.

    OpenVINO takes the uint8 NHWC batch as is: layout, type and the 1/255
    scale are folded into its graph.
    """
    if backend is Backend.OPENVINO:
        import openvino as ov
        from openvino.preprocess import PrePostProcessor

        core = ov.Core()
        model = core.read_model(str(onnx_path))
        # Fix the window size (the batch stays dynamic): the NMS-free head's top-k needs it.
        model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([-1, 3, size, size])})
        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(ppp.build(), "CPU", config)
        request = compiled.create_infer_request()

        def run_openvino(x: NDArray[np.uint8]) -> NDArray[np.float32]:
            return np.asarray(request.infer({0: np.ascontiguousarray(x)})[0]).copy()

        return run_openvino
    if backend is Backend.ONNXRUNTIME:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnxruntime(x: NDArray[np.uint8]) -> NDArray[np.float32]:
            chw = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)
            return np.asarray(session.run(None, {name: chw})[0])

        return run_onnxruntime
    raise ValueError(f"no ONNX runtime for backend {backend}")
