"""Service-task operators: small functions registered by name, calling adapters/ and domain/."""
