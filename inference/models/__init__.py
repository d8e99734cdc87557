"""Built-in demo models: network definitions and the scripts that train them."""
