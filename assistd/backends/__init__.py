"""Model backends behind one interface (``base.ChatBackend``), used by runs and, later, Chat Completions."""
