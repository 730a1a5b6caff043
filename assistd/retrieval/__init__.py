"""Retrieval for vector stores and the file_search tool: extracting, chunking, indexing and searching."""
