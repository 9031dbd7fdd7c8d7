"""CLI command modules. Each defines ``register(app)``; ``cli.COMMAND_MODULES`` lists them."""
