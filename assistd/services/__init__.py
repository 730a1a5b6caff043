"""Domain services: the rules of each resource. They know the store, never HTTP."""
