"""The sandbox under the code_interpreter tool: stateful Python kernels in bubblewrap, one per session.

It knows nothing of HTTP or runs: ``CodeSandbox.execute(session, code, inputs)`` returns an
``Execution`` (logs, PNG images, files). See docs/code-interpreter.md.
"""

from assistd.sandbox.files import InputFile, OutputFile
from assistd.sandbox.sandbox import CodeSandbox, Execution, SandboxUnavailable

__all__ = ["CodeSandbox", "Execution", "InputFile", "OutputFile", "SandboxUnavailable"]
