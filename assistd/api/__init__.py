"""The HTTP layer: translates between the wire and the services. No business rules live here."""
