"""The local account's AWS behaviour where moto differs from AWS: one module per service, shared mechanics beside them."""
