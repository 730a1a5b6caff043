"""The runs engine: the run state machine, the events it emits, and the worker that drives runs."""
