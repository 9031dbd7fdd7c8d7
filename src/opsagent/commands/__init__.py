"""CLI command modules. Each defines ``register(app)``; ``cli.py`` imports and registers them."""
