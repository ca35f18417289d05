"""How AWS behaves where the local account must be as strict as AWS, one module per concern."""
