"""Request models of the wire: what clients may send, with the spec's limits.

Response objects are the ``openai`` SDK's own models (see ``assistd.types``); these are the other half,
which the SDK only types as TypedDicts without limits.
"""
